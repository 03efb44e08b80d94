#!/usr/bin/env node
// Writes the TensorFlow.js reference descriptors that models/toonnx's
// parity test (TestDlibResNetParity) compares the converted dlib-resnet-128
// ONNX model with. It runs @vladmandic/face-api's own faceRecognitionNet
// (the package bundles TensorFlow.js; nothing else is needed but node) on
// two deterministic 150x150 RGB images, which the Go test rebuilds.
//
// Rerun it (only needed if the input or the package changes):
//
//   npm pack @vladmandic/face-api@1.7.15 && tar xzf vladmandic-face-api-1.7.15.tgz
//   node scripts/tfjs-reference.js package models/toonnx/testdata/dlib-resnet-128.ref.json
//
// Normalisation: dlib's network takes (pixel - mean) / 256, as dlib and the
// original face-api.js compute it, and so does the converted model;
// @vladmandic/face-api divides by 255 instead. To compare the networks
// rather than that constant, each pixel is moved towards the mean by
// 255/256 before face-api sees it, so that its (x' - mean) / 255 is the
// converted model's (x - mean) / 256.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const [pkg, outFile] = process.argv.slice(2);
if (!pkg || !outFile) {
  console.error('usage: node scripts/tfjs-reference.js UNPACKED_FACE_API_PACKAGE_DIR OUT.json');
  process.exit(2);
}
// The browser bundle (dist/face-api.js) carries TensorFlow.js with its CPU
// backend. Under node it asks for util.TextEncoder through a stub the
// bundler left empty, so that one call is pointed at node's util.
globalThis.require = require;
const bundle = fs.readFileSync(path.join(pkg, 'dist', 'face-api.js'), 'utf8')
  .replace(/this\.util=\w+\(\)/, 'this.util=require("util")');
vm.runInThisContext(bundle);
const faceapi = globalThis.faceapi;
const tf = faceapi.tf;

(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  const dir = path.join(pkg, 'model');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'face_recognition_model-weights_manifest.json')));
  const bin = fs.readFileSync(path.join(dir, 'face_recognition_model.bin'));
  const weights = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length), manifest.flatMap(g => g.weights));
  const net = faceapi.nets.faceRecognitionNet;
  net.loadFromWeightMap(weights);

  // Keep in step with dlibTestInput in models/toonnx/dlibresnet_test.go.
  const side = 150, rows = 2, n = side * side * 3;
  const mean = [122.782, 117.001, 104.298];
  const x = new Float32Array(rows * n);
  for (let b = 0; b < rows; b++) {
    for (let i = 0; i < n; i++) {
      const v = (i * 7919 + b * 104729) % 255;
      const m = mean[i % 3];
      x[b * n + i] = m + (v - m) * 255 / 256;
    }
  }
  // An array of images is a batch to face-api (a 4-D tensor must be one).
  const images = [];
  for (let b = 0; b < rows; b++) images.push(tf.tensor3d(x.subarray(b * n, (b + 1) * n), [side, side, 3]));
  const out = await net.computeFaceDescriptor(images);
  fs.writeFileSync(outFile, JSON.stringify({
    package: '@vladmandic/face-api@' + JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'))).version,
    tfjs: tf.version_core,
    descriptors: out.map(d => Array.from(d)),
  }) + '\n');
  console.error('wrote', outFile);
})().catch(err => { console.error(err); process.exit(1); });
