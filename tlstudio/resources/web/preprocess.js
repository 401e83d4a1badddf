// Image preprocessing of a tlstudio web export: the same pixels the app feeds its model.
//
// The app opens a photo with Pillow (EXIF orientation applied, transparency on white), then
// resizes it with Pillow's BILINEAR filter following the run's resize policy (stretch, crop or
// pad; tlstudio.core.data.imageio.resize_image). The browser's own canvas scaling uses another
// filter, so this module reimplements Pillow's resampler (libImaging/Resample.c, 8-bit path:
// separable convolution with a support widened by the scale factor, 22-bit fixed-point
// coefficients, horizontal pass first) and ImageOps.fit / ImageOps.pad, number for number.
// The model scales its own input, so the result is fed as raw RGB 0-255 floats.

const PRECISION_BITS = 22; // 32 - 8 - 2, as in Pillow
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function bilinearFilter(x) {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

// C's (int) cast: truncation toward zero.
function truncInt(v) {
  return v < 0 ? Math.ceil(v) : Math.floor(v);
}

// Python's round(): half to even.
export function roundHalfEven(x) {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter.
// in0 and in1 are single-precision floats in Pillow (the resize box is parsed as C floats).
function coefficients(inSize, in0, in1, outSize) {
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = truncInt(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = truncInt(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bilinearFilter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? truncInt(-0.5 + k * ONE) : truncInt(0.5 + k * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss) {
  const v = Math.floor(ss / ONE); // the arithmetic shift of the C code
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function horizontalPass(src, width, firstRow, rows, outWidth, c) {
  const out = new Uint8Array(outWidth * rows * 3);
  for (let yy = 0; yy < rows; yy++) {
    const rowStart = (yy + firstRow) * width * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = c.bounds[xx * 2];
      const xmax = c.bounds[xx * 2 + 1];
      const kOff = xx * c.ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0; x < xmax; x++) {
        const k = c.kk[kOff + x];
        const p = rowStart + (x + xmin) * 3;
        s0 += src[p] * k;
        s1 += src[p + 1] * k;
        s2 += src[p + 2] * k;
      }
      const o = (yy * outWidth + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

function verticalPass(src, width, rowOffset, outHeight, c) {
  const out = new Uint8Array(width * outHeight * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = c.bounds[yy * 2] - rowOffset;
    const ymax = c.bounds[yy * 2 + 1];
    const kOff = yy * c.ksize;
    for (let xx = 0; xx < width; xx++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let y = 0; y < ymax; y++) {
        const k = c.kk[kOff + y];
        const p = ((y + ymin) * width + xx) * 3;
        s0 += src[p] * k;
        s1 += src[p + 1] * k;
        s2 += src[p + 2] * k;
      }
      const o = (yy * width + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/**
 * Pillow's Image.resize(size, BILINEAR, box) of an RGB image.
 * @param {{data: Uint8Array, width: number, height: number}} img RGB, 3 bytes a pixel, rows top first
 * @param {number} outWidth
 * @param {number} outHeight
 * @param {number[]} [box] source region [left, top, right, bottom] (floats), default the whole image
 * @param {{verticalFirst?: boolean}} [options] verticalFirst: Pillow 13's order of the two passes
 *   (the vertical pass first when the height shrinks more than twice as much as the width);
 *   older Pillow always starts with the horizontal pass. The export says which one the app used.
 */
export function resizeBilinear(img, outWidth, outHeight, box, options) {
  const b = (box || [0, 0, img.width, img.height]).map(Math.fround);
  if (outWidth === img.width && outHeight === img.height &&
      b[0] === 0 && b[1] === 0 && b[2] === img.width && b[3] === img.height) {
    return { data: img.data.slice(), width: img.width, height: img.height };
  }
  // The same odd-looking tests as Pillow's ImagingResampleInner (box[2] against the output width).
  const needHorizontal = outWidth !== img.width || b[0] !== 0 || b[2] !== outWidth;
  const needVertical = outHeight !== img.height || b[1] !== 0 || b[3] !== outHeight;
  const shrinkY = img.height - outHeight;
  const horizontalFirst = !(options && options.verticalFirst && shrinkY > 0 && shrinkY > (img.width - outWidth) * 2);
  const vert = coefficients(img.height, b[1], b[3], outHeight);
  let data = img.data;
  let width = img.width;
  if (horizontalFirst) {
    let rowOffset = 0;
    if (needHorizontal) {
      const firstRow = vert.bounds[0];
      const lastRow = vert.bounds[outHeight * 2 - 2] + vert.bounds[outHeight * 2 - 1];
      const horiz = coefficients(img.width, b[0], b[2], outWidth);
      data = horizontalPass(data, width, firstRow, lastRow - firstRow, outWidth, horiz);
      width = outWidth;
      rowOffset = firstRow;
    }
    if (needVertical) data = verticalPass(data, width, rowOffset, outHeight, vert);
  } else {
    if (needVertical) data = verticalPass(data, width, 0, outHeight, vert);
    if (needHorizontal) {
      const horiz = coefficients(img.width, b[0], b[2], outWidth);
      data = horizontalPass(data, width, 0, outHeight, outWidth, horiz);
    }
  }
  if (data === img.data) data = data.slice();
  return { data, width: outWidth, height: outHeight };
}

// ImageOps.fit(img, size, BILINEAR, centering=(0.5, 0.5)): centre crop to the aspect ratio, then scale.
function fit(img, outWidth, outHeight, options) {
  const w = img.width;
  const h = img.height;
  const liveRatio = w / h;
  const outRatio = outWidth / outHeight;
  let cropWidth;
  let cropHeight;
  if (liveRatio === outRatio) {
    cropWidth = w;
    cropHeight = h;
  } else if (liveRatio >= outRatio) {
    cropWidth = outRatio * h;
    cropHeight = h;
  } else {
    cropWidth = w;
    cropHeight = w / outRatio;
  }
  const left = (w - cropWidth) * 0.5;
  const top = (h - cropHeight) * 0.5;
  return resizeBilinear(img, outWidth, outHeight, [left, top, left + cropWidth, top + cropHeight], options);
}

// ImageOps.pad(img, size, BILINEAR, color=black): scale to fit inside (ImageOps.contain), centre on black.
function pad(img, outWidth, outHeight, options) {
  const imRatio = img.width / img.height;
  const destRatio = outWidth / outHeight;
  let w = outWidth;
  let h = outHeight;
  if (imRatio !== destRatio) {
    if (imRatio > destRatio) {
      h = roundHalfEven(img.height / img.width * outWidth);
    } else {
      w = roundHalfEven(img.width / img.height * outHeight);
    }
  }
  const out = new Uint8Array(outWidth * outHeight * 3);
  if (w === 0 || h === 0) return { data: out, width: outWidth, height: outHeight };
  const resized = resizeBilinear(img, w, h, null, options);
  if (w === outWidth && h === outHeight) return resized;
  const x0 = w !== outWidth ? roundHalfEven((outWidth - w) * 0.5) : 0;
  const y0 = w !== outWidth ? 0 : roundHalfEven((outHeight - h) * 0.5);
  for (let y = 0; y < h; y++) {
    const ty = y + y0;
    if (ty < 0 || ty >= outHeight) continue;
    for (let x = 0; x < w; x++) {
      const tx = x + x0;
      if (tx < 0 || tx >= outWidth) continue;
      const s = (y * w + x) * 3;
      const t = (ty * outWidth + tx) * 3;
      out[t] = resized.data[s];
      out[t + 1] = resized.data[s + 1];
      out[t + 2] = resized.data[s + 2];
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}

/**
 * Resize an RGB image to the model input as tlstudio.core.data.imageio.resize_image does.
 * @param {{data: Uint8Array, width: number, height: number}} img
 * @param {number} outHeight
 * @param {number} outWidth
 * @param {"stretch"|"crop"|"pad"} policy
 * @param {{verticalFirst?: boolean}} [options] see resizeBilinear
 */
export function resizeImage(img, outHeight, outWidth, policy, options) {
  if (policy === "stretch") return resizeBilinear(img, outWidth, outHeight, null, options);
  if (policy === "crop") return fit(img, outWidth, outHeight, options);
  if (policy === "pad") return pad(img, outWidth, outHeight, options);
  throw new Error(`unknown resize policy ${policy}`);
}

/** RGBA bytes (canvas ImageData) to packed RGB. */
export function rgbaToRgb(rgba, width, height) {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height * 4; i += 4, j += 3) {
    out[j] = rgba[i];
    out[j + 1] = rgba[i + 1];
    out[j + 2] = rgba[i + 2];
  }
  return { data: out, width, height };
}

/**
 * Model outputs to class probabilities, as tlstudio's Predictor does: one sigmoid unit becomes
 * [1 - p, p] (logits go through the sigmoid first); outputs that are not already probabilities
 * (negative, or not summing to 1) go through a softmax.
 * @param {Float32Array|number[]} out
 */
export function toProbabilities(out) {
  const values = Array.from(out);
  if (values.length === 1) {
    let p = values[0];
    if (p < 0 || p > 1) p = 1 / (1 + Math.exp(-p));
    return [1 - p, p];
  }
  const sum = values.reduce((a, b) => a + b, 0);
  const min = Math.min(...values);
  if (min < -1e-6 || Math.abs(sum - 1) > 1e-3) {
    const max = Math.max(...values);
    const e = values.map((v) => Math.exp(v - max));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / total);
  }
  return values;
}
