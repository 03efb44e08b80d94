module github.com/facedhq/faced

go 1.26

require github.com/yalue/onnxruntime_go v1.27.0

require gocv.io/x/gocv v0.31.0
