// The vectors TestJS (js_test.go) writes from the Go code: PEERSCOPE_VECTORS.
import { readFileSync } from 'node:fs';

export const vectors = process.env.PEERSCOPE_VECTORS
  ? JSON.parse(readFileSync(process.env.PEERSCOPE_VECTORS, 'utf8'))
  : null;

export const hex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
