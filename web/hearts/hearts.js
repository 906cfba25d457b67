// Floating hearts (web/hearts), shared by the studio and the player:
// peerscopeHearts.float(layer, n, onFloat, go) floats n hearts (8 at most,
// one every 150 ms) up the .hearts element layer, never more than 24 at
// once, and calls onFloat for each that floated; go, if given, is asked
// before each (false: the page is no longer live, float no more).
(() => {
  'use strict';
  const MAX_HEARTS = 24; // hearts on screen at once: a burst never floods the DOM
  const PER_CALL = 8;
  window.peerscopeHearts = {
    float(layer, n, onFloat, go) {
      for (let i = 0; i < Math.min(n, PER_CALL); i++) {
        setTimeout(() => {
          if ((go && !go()) || layer.children.length >= MAX_HEARTS) return;
          const h = document.createElement('span');
          h.className = `heart h${Math.floor(Math.random() * 4)}`;
          h.textContent = '♥';
          h.addEventListener('animationend', () => h.remove(), { once: true });
          layer.append(h);
          if (onFloat) onFloat();
        }, i * 150);
      }
    },
  };
})();
