// What the player tests measure of a page's video.

// pictureProbe defines window.peerscopePicture(video, comments): the share
// of the video's picture that is on screen (shown: 0..1, where the element
// lays it out under object-fit and object-position, clipped to the element
// and the viewport), and the share of that picture the comments (a
// selector) cover (covered: 0..1).
export function pictureProbe() {
  window.peerscopePicture = (v, comments) => {
    const r = v.getBoundingClientRect();
    const cs = getComputedStyle(v);
    let w = r.width; let h = r.height;
    if (v.videoWidth && v.videoHeight && cs.objectFit === 'contain') {
      const k = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
      w = v.videoWidth * k; h = v.videoHeight * k;
    }
    const [px, py] = cs.objectPosition.split(' ').map((x) => parseFloat(x) / 100);
    const l = r.left + (r.width - w) * px; const t = r.top + (r.height - h) * py;
    const cut = (a, b) => ({ l: Math.max(a.l, b.l), t: Math.max(a.t, b.t), r: Math.min(a.r, b.r), b: Math.min(a.b, b.b) });
    const area = (a) => Math.max(0, a.r - a.l) * Math.max(0, a.b - a.t);
    const pic = cut(cut({ l, t, r: l + w, b: t + h }, { l: r.left, t: r.top, r: r.right, b: r.bottom }), { l: 0, t: 0, r: innerWidth, b: innerHeight });
    let over = 0;
    for (const el of document.querySelectorAll(comments)) {
      if (!el.offsetParent) continue;
      const c = el.getBoundingClientRect();
      over += area(cut(pic, { l: c.left, t: c.top, r: c.right, b: c.bottom }));
    }
    const shown = w * h > 0 ? area(pic) / (w * h) : 0;
    return { shown: Math.round(shown * 1000) / 1000, covered: area(pic) > 0 ? Math.round((over / area(pic)) * 1000) / 1000 : 1 };
  };
}
