// Floating hearts (web/hearts), shared by the studio and the player:
// peerscopeHearts.float(layer, n, onFloat, go) asks for n hearts to float up
// the .hearts element layer, calls onFloat for each that floated, and asks
// go, if given, before each (false: the page is no longer live; that
// call's hearts left are dropped). peerscopeHearts.alive(layer) says how
// many are rising there now.
//
// Every heart asked for floats. A page floats a beat's rise at once (2 s of
// everyone's taps), so a layer queues them and lets them go every TICK ms,
// the queue over about SPREAD ms, so that a burst rises as a stream; a lone
// tap (the queue idle) floats at once. At 50 a second and 2.3–2.9 s a rise,
// about 140 are in the air. They are drawn on one canvas the size of the
// layer, from four sprites made once (a heart in each colour, with its
// shadow), by one requestAnimationFrame loop that runs only while any
// rises: a frame costs one clear and a drawImage a heart, and the page's
// DOM does not change as hearts come and go (140 elements each animated by
// CSS cost a third of the frames in software compositing). A flood is
// bounded: at most MAX_ALIVE in the air and MAX_QUEUED waiting; hearts
// beyond either are coalesced, counted into the next heart that floats,
// which is drawn larger.
(() => {
  'use strict';
  const MAX_ALIVE = 300;  // far above 50/s × a rise: a flood cannot grow the work without bound
  const MAX_QUEUED = 300; // hearts waiting; more are coalesced rather than floated minutes late
  const TICK = 50;        // ms between releases
  const SPREAD = 1000;    // a queue drains over about this long
  const MIN_PER_TICK = 2; // so that a steady stream never falls behind
  const FONT = 28;        // px, a heart's size; a coalesced one is BIG
  const BIG = 40;
  const RIGHT = 18, BOTTOM = 6; // where a heart starts, from the layer's bottom right corner

  // The four rises: colour, duration (ms), the keyframe at `mid` (its
  // fraction of the duration; opacity 1 there) and the end (opacity 0),
  // each as [dx, dy, scale] from the start (scale 0.5).
  const RISES = [
    { colour: null, ms: 2600, mid: 0.15, k: [-4, -30, 1], end: [-14, -280, 1.1] }, // colour: --heart
    { colour: '#ff7a9c', ms: 2600, mid: 0.15, k: [6, -30, 1], end: [10, -300, 0.9] },
    { colour: '#f0a', ms: 2900, mid: 0.2, k: [-10, -40, 1.1], end: [4, -260, 1] },
    { colour: '#ff4d6d', ms: 2300, mid: 0.15, k: [2, -25, 0.9], end: [-20, -240, 1.2] },
  ];
  const reduced = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;

  const layers = new WeakMap(); // layer → its state

  // easeOut is CSS's ease-out, near enough for a heart.
  const easeOut = (t) => 1 - (1 - t) * (1 - t);

  function sprite(colour, size, dpr) {
    const side = Math.ceil(size * 1.6);
    const c = document.createElement('canvas');
    c.width = c.height = Math.ceil(side * dpr);
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    g.font = `${size}px sans-serif`;
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.shadowColor = 'rgba(0, 0, 0, .5)';
    g.shadowOffsetY = 1;
    g.shadowBlur = 3;
    g.fillStyle = colour;
    g.fillText('♥', side / 2, side / 2);
    return { c, side };
  }

  function stateOf(layer) {
    let st = layers.get(layer);
    if (st) return st;
    const canvas = document.createElement('canvas');
    canvas.className = 'hearts-canvas';
    layer.append(canvas);
    st = { layer, canvas, g: canvas.getContext('2d'), w: 0, h: 0, dpr: 0, sprites: null,
      queue: [], queued: 0, coalesced: 0, timer: 0, hearts: [], pool: [], frame: 0 };
    layers.set(layer, st);
    return st;
  }

  // fit sizes the canvas to its layer (and the sprites to the screen's
  // pixels) when either changed.
  function fit(st) {
    const w = st.layer.clientWidth, h = st.layer.clientHeight, dpr = window.devicePixelRatio || 1;
    if (w === st.w && h === st.h && dpr === st.dpr && st.sprites) return;
    st.w = w; st.h = h; st.dpr = dpr;
    st.canvas.width = Math.round(w * dpr);
    st.canvas.height = Math.round(h * dpr);
    const first = getComputedStyle(st.layer).getPropertyValue('--heart').trim() || '#e0245e';
    st.sprites = RISES.map((r) => [sprite(r.colour || first, FONT, dpr), sprite(r.colour || first, BIG, dpr)]);
  }

  function spawn(st) {
    const h = st.pool.pop() || {};
    h.rise = Math.floor(Math.random() * RISES.length);
    h.big = st.coalesced > 0 ? 1 : 0;
    h.t0 = performance.now();
    h.ms = reduced ? 1200 : RISES[h.rise].ms;
    st.coalesced = 0;
    st.hearts.push(h);
    if (!st.frame) st.frame = requestAnimationFrame((t) => draw(st, t));
  }

  function draw(st, now) {
    st.frame = 0;
    fit(st);
    const { g, dpr } = st;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, st.canvas.width, st.canvas.height);
    let kept = 0;
    for (const h of st.hearts) {
      const t = (now - h.t0) / h.ms;
      if (t >= 1) {
        if (st.pool.length < MAX_ALIVE) st.pool.push(h);
        continue;
      }
      st.hearts[kept++] = h;
      if (t < 0) continue;
      const r = RISES[h.rise];
      let x, y, s, a;
      if (t < r.mid) {
        const e = easeOut(t / r.mid);
        x = r.k[0] * e; y = r.k[1] * e; s = 0.5 + (r.k[2] - 0.5) * e; a = e;
      } else {
        const e = easeOut((t - r.mid) / (1 - r.mid));
        x = r.k[0] + (r.end[0] - r.k[0]) * e; y = r.k[1] + (r.end[1] - r.k[1]) * e;
        s = r.k[2] + (r.end[2] - r.k[2]) * e; a = 1 - e;
      }
      const sp = st.sprites[h.rise][h.big];
      const cx = st.w - RIGHT - FONT / 2 + x, cy = st.h - BOTTOM - FONT / 2 + y;
      const half = (sp.side * s) / 2;
      g.globalAlpha = a;
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.drawImage(sp.c, cx - half, cy - half, sp.side * s, sp.side * s);
    }
    st.hearts.length = kept;
    g.globalAlpha = 1;
    if (kept) st.frame = requestAnimationFrame((t) => draw(st, t));
  }

  // next floats the next heart of the queue, or coalesces it when the
  // layer is full; it reports whether there was one.
  function next(st) {
    while (st.queue.length) {
      const b = st.queue[0];
      if (b.go && !b.go()) {
        st.queued -= b.left;
        st.queue.shift();
        continue;
      }
      st.queued--;
      if (--b.left === 0) st.queue.shift();
      if (st.hearts.length >= MAX_ALIVE) {
        st.coalesced++;
      } else {
        spawn(st);
        if (b.onFloat) b.onFloat();
      }
      return true;
    }
    return false;
  }

  function release(st) {
    let k = Math.max(MIN_PER_TICK, Math.ceil(st.queued * TICK / SPREAD));
    while (k-- > 0 && next(st));
    if (!st.queue.length) {
      clearInterval(st.timer);
      st.timer = 0;
    }
  }

  window.peerscopeHearts = {
    MAX_ALIVE,
    MAX_QUEUED,
    float(layer, n, onFloat, go) {
      n = Math.floor(n);
      if (!(n > 0) || !layer) return;
      const st = stateOf(layer);
      const take = Math.min(n, MAX_QUEUED - st.queued);
      st.coalesced += n - take;
      if (take <= 0) return;
      st.queue.push({ left: take, onFloat, go });
      st.queued += take;
      if (!st.timer) {
        next(st); // the queue was idle: one floats now
        if (st.queue.length) st.timer = setInterval(() => release(st), TICK);
      }
    },
    alive(layer) {
      const st = layers.get(layer);
      return st ? st.hearts.length : 0;
    },
  };
})();
