// The site icon: browsers ask for /favicon.ico on every page they open (the API docs, a
// JSON answer opened in a tab) and log a 404 when it is missing. Drawn here rather than
// shipped as a file, so the binary needs no asset: a 16x16 ICO holding one 32-bit BMP, a
// disc in the page's accent colour (style.css --accent) on transparent.

/** Icon edge in pixels: the size browsers use in tabs. */
const SIZE = 16;
/** The page's --accent, #4dabf7, as B, G, R (BMP order). */
const ACCENT_BGR = [0xf7, 0xab, 0x4d] as const;

function draw(): Uint8Array {
  const pixels = SIZE * SIZE * 4;
  const mask = SIZE * 4; // 1 bit per pixel, rows padded to 4 bytes; all 0: alpha decides
  const bmp = 40 + pixels + mask;
  const out = new Uint8Array(6 + 16 + bmp);
  const view = new DataView(out.buffer);
  // ICONDIR: reserved, type 1 (icon), one image.
  view.setUint16(2, 1, true);
  view.setUint16(4, 1, true);
  // ICONDIRENTRY: width, height, colours, reserved, planes, bits, size, offset.
  out[6] = SIZE;
  out[7] = SIZE;
  view.setUint16(10, 1, true);
  view.setUint16(12, 32, true);
  view.setUint32(14, bmp, true);
  view.setUint32(18, 22, true);
  // BITMAPINFOHEADER; the height counts the mask too, as ICO requires.
  const h = 22;
  view.setUint32(h, 40, true);
  view.setInt32(h + 4, SIZE, true);
  view.setInt32(h + 8, SIZE * 2, true);
  view.setUint16(h + 12, 1, true);
  view.setUint16(h + 14, 32, true);
  view.setUint32(h + 20, pixels + mask, true);
  // Pixels, bottom row first; the disc's edge is softened over one pixel.
  const centre = (SIZE - 1) / 2;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const edge = SIZE / 2 - 1 - Math.hypot(x - centre, y - centre);
      const alpha = Math.round(Math.max(0, Math.min(1, edge + 0.5)) * 255);
      const at = h + 40 + (y * SIZE + x) * 4;
      out.set([...ACCENT_BGR, alpha], at);
    }
  }
  return out;
}

let drawn: Uint8Array | undefined;
/**
 * The icon's bytes (about 1.1 KB), drawn on the first request for it. ? Not at import:
 * drawing took 0.4-1 ms of start-up (issue 14, timing marks in the compiled binary).
 */
export function faviconIco(): Uint8Array {
  drawn ??= draw();
  return drawn;
}
