#!/usr/bin/env node
// Reference outputs of a TF.js layers model, computed by TF.js itself, for checking igan's
// converted feature networks (docs/features.md): the model is cut after the requested layers
// (only their ancestors and those layers' weights are kept, with any input size allowed), run
// by the pure-JavaScript CPU backend on 8-bit RGB inputs scaled to [0, 1] (nsfwjs' input), and
// the inputs and outputs are written to one safetensors file:
//   case<i>.input  U8  (H, W, 3)
//   case<i>.<layer> F32 (h, w, C)  (TensorFlow's channels-last layout)
// Needs @tensorflow/tfjs-core, -layers and -backend-cpu 4.x on NODE_PATH, e.g.
//   npm install --prefix /tmp/tfjs @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-layers@4.22.0 \
//       @tensorflow/tfjs-backend-cpu@4.22.0
//   NODE_PATH=/tmp/tfjs/node_modules node scripts/tfjs-reference.cjs \
//       data-cache/features/nsfwjs-4.4.0/package/dist/models/inception_v3 OUT.safetensors \
//       --layers mixed5 --synthetic 107x101:1 --raw photo.rgb:299x299
// --synthetic WxH:SEED is a smooth random image (a 6x6 field, bilinearly upsampled); --raw
// FILE:WxH reads interleaved 8-bit RGB (e.g. ImageMagick's `convert IN -depth 8 rgb:FILE`).
// --formula-weights replaces the model's weights by uint8 values that a formula of the weight's
// index and the element's index gives (formulaByte below; He-scaled kernels), and stores the cut
// topology and weight manifest in the file's metadata (`topology`, `weights`), so that a test
// can rebuild the same TF.js model without the package's weights.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');

function usage(message) {
  console.error(`error: ${message}\nusage: tfjs-reference.cjs MODEL_DIR OUT.safetensors ` +
                '--layers L1,L2 (--synthetic WxH:SEED | --raw FILE:WxH)...');
  process.exit(2);
}

// nsfwjs' bundles are browserify modules: model.min.js exports the model.json object, each
// shard P is P.min.js exporting a base64 string. Plain model.json and shard files work too.
function readModel(dir) {
  const json = path.join(dir, 'model.json');
  const model = fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8'))
                                    : require(path.resolve(dir, 'model.min.js'));
  const shards = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      const plain = path.join(dir, p);
      shards.push(fs.existsSync(plain) ? fs.readFileSync(plain)
                                       : Buffer.from(require(path.resolve(dir, p + '.min.js')),
                                                     'base64'));
    }
  }
  const specs = model.weightsManifest.flatMap((g) => g.weights);
  return {topology: model.modelTopology, specs, data: Buffer.concat(shards)};
}

function storedBytes(spec) {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
  return n * {uint8: 1, uint16: 2, float16: 2, float32: 4}[dtype];
}

// The topology cut after `outputs`: their ancestors only, any input height and width.
function cutModel(model, outputs) {
  const config = model.topology.model_config.config;
  const byName = new Map(config.layers.map((l) => [l.config.name, l]));
  const keep = new Set();
  const visit = (name) => {
    if (keep.has(name)) return;
    const layer = byName.get(name);
    if (!layer) usage(`no layer '${name}' in the model`);
    keep.add(name);
    for (const node of layer.inbound_nodes) for (const inbound of node) visit(inbound[0]);
  };
  outputs.forEach(visit);
  const layers = config.layers.filter((l) => keep.has(l.config.name)).map((l) => {
    const copy = JSON.parse(JSON.stringify(l));
    if (copy.class_name === 'InputLayer') copy.config.batch_input_shape = [null, null, null, 3];
    return copy;
  });
  const topology = JSON.parse(JSON.stringify(model.topology));
  topology.model_config.config.layers = layers;
  topology.model_config.config.output_layers = outputs.map((n) => [n, 0, 0]);
  delete topology.training_config;
  const specs = [], parts = [];
  let offset = 0;
  for (const spec of model.specs) {
    const bytes = storedBytes(spec);
    if (keep.has(spec.name.split('/')[0])) {
      specs.push(spec);
      parts.push(model.data.subarray(offset, offset + bytes));
    }
    offset += bytes;
  }
  if (offset !== model.data.length) throw new Error('the shards do not match the manifest');
  const data = Buffer.concat(parts);
  return {modelTopology: topology, weightSpecs: specs,
          weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length)};
}

// The byte of element i of weight t under --formula-weights (32-bit integer arithmetic, so that
// C++ gives the same bytes).
function formulaByte(t, i) {
  let h = Math.imul(i ^ Math.imul(t + 1, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 24;
}

// The cut model's weights as formula bytes, uint8-quantised with ranges that keep activations
// of order 1: kernels uniform in +-sqrt(6 / fan_in), batch-norm statistics near (0, 1).
function formulaWeights(cut) {
  const specs = [], bytes = [];
  cut.weightSpecs.forEach((spec, t) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const kind = spec.name.split('/').pop();
    let min = -0.2, range = 0.4;
    if (kind === 'kernel') {
      const a = Math.sqrt(6 / (n / spec.shape[spec.shape.length - 1]));
      min = -a;
      range = 2 * a;
    } else if (kind === 'moving_variance' || kind === 'gamma') {
      min = 0.5;
      range = 1;
    }
    specs.push({name: spec.name, shape: spec.shape, dtype: 'float32',
                quantization: {dtype: 'uint8', min, scale: range / 255}});
    bytes.push(Uint8Array.from({length: n}, (_, i) => formulaByte(t, i)));
  });
  const data = Buffer.concat(bytes);
  return {modelTopology: cut.modelTopology, weightSpecs: specs,
          weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length)};
}

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function synthetic(w, h, seed) {
  const random = mulberry32(seed), grid = 6;
  const field = Array.from({length: grid * grid * 3}, random);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; ++y) {
    for (let x = 0; x < w; ++x) {
      const fy = (y / (h - 1)) * (grid - 1), fx = (x / (w - 1)) * (grid - 1);
      const y0 = Math.min(Math.floor(fy), grid - 2), x0 = Math.min(Math.floor(fx), grid - 2);
      const ty = fy - y0, tx = fx - x0;
      for (let c = 0; c < 3; ++c) {
        const at = (yy, xx) => field[(yy * grid + xx) * 3 + c];
        const v = (1 - ty) * ((1 - tx) * at(y0, x0) + tx * at(y0, x0 + 1)) +
                  ty * ((1 - tx) * at(y0 + 1, x0) + tx * at(y0 + 1, x0 + 1));
        out[(y * w + x) * 3 + c] = Math.round(v * 255);
      }
    }
  }
  return out;
}

function parseSize(text) {
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m) usage(`'${text}' is not WxH`);
  return [Number(m[1]), Number(m[2])];
}

function writeSafetensors(file, tensors, metadata) {
  const header = {__metadata__: metadata};
  let offset = 0;
  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[t.name] = {dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length]};
    t.bytes = bytes;
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(json), ...tensors.map((t) => t.bytes)]));
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) usage('MODEL_DIR and OUT are needed');
  const [dir, out] = args;
  let layers = null, formula = false;
  const inputs = [];
  for (let i = 2; i < args.length; i += 2) {
    if (args[i] === '--formula-weights') {
      formula = true;
      --i;
      continue;
    }
    if (i + 1 >= args.length) usage(`${args[i]} needs a value`);
    const value = args[i + 1];
    if (args[i] === '--layers') {
      layers = value.split(',');
    } else if (args[i] === '--synthetic') {
      const [size, seed] = value.split(':');
      const [w, h] = parseSize(size);
      inputs.push({w, h, pixels: synthetic(w, h, Number(seed)), what: `synthetic ${value}`});
    } else if (args[i] === '--raw') {
      const at = value.lastIndexOf(':');
      const [w, h] = parseSize(value.slice(at + 1));
      const pixels = new Uint8Array(fs.readFileSync(value.slice(0, at)));
      if (pixels.length !== w * h * 3) usage(`${value}: ${pixels.length} bytes, not ${w}x${h}x3`);
      inputs.push({w, h, pixels, what: path.basename(value.slice(0, at))});
    } else {
      usage(`unknown option ${args[i]}`);
    }
  }
  if (!layers || inputs.length === 0) usage('--layers and at least one input are needed');
  await tf.setBackend('cpu');
  let artifacts = cutModel(readModel(dir), layers);
  if (formula) artifacts = formulaWeights(artifacts);
  const model = await tfl.loadLayersModel({load: async () => artifacts});
  const tensors = [];
  inputs.forEach((input, i) => {
    tensors.push({name: `case${i}.input`, dtype: 'U8', shape: [input.h, input.w, 3],
                  data: input.pixels});
    const x = tf.tensor4d(Float32Array.from(input.pixels, (v) => v / 255), [1, input.h, input.w, 3]);
    let ys = model.predict(x);
    if (!Array.isArray(ys)) ys = [ys];
    ys.forEach((y, k) => {
      tensors.push({name: `case${i}.${layers[k]}`, dtype: 'F32', shape: y.shape.slice(1),
                    data: y.dataSync()});
    });
  });
  const pkg = (name) => require(`${name}/package.json`).version;
  const metadata = {
    model: path.resolve(dir).split(path.sep).slice(-4).join('/'),
    layers: layers.join(','),
    inputs: inputs.map((x) => x.what).join('; '),
    tfjs: `tfjs-core ${pkg('@tensorflow/tfjs-core')}, tfjs-layers ` +
          `${pkg('@tensorflow/tfjs-layers')}, backend cpu`,
    scaling: 'input / 255',
  };
  if (formula) {
    metadata.topology = JSON.stringify(artifacts.modelTopology);
    metadata.weights = JSON.stringify(artifacts.weightSpecs);
  }
  writeSafetensors(out, tensors, metadata);
  console.error(`${out}: ${inputs.length} cases, layers ${layers.join(',')}`);
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
