// Package face is the vision pipeline: image bytes in, faces out (box,
// landmarks, aligned crop, embedding, liveness, attributes, quality).
//
// It is the only package besides accel/opencvdnn that imports gocv: image
// decoding, resizing and warping happen here, and every input is validated
// before it reaches OpenCV, whose C++ assertions would abort the process.
package face
