// C interface to the few cv::dnn calls that can throw.
//
// gocv 0.31's C wrappers call OpenCV without a try block, so any
// cv::Exception (a model OpenCV cannot parse, an unsupported layer, a shape
// assertion inside forward) unwinds into cgo and aborts the whole daemon.
// Every function here catches and returns the message instead: NULL means
// success, anything else is a malloc'd string the caller frees.
#ifndef FACED_OPENCVDNN_SHIM_H
#define FACED_OPENCVDNN_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Opaque handles: a cv::dnn::Net* and a std::vector<cv::Mat>*.
typedef void* OcvNet;
typedef void* OcvBlobs;

// OCVDNN_MAX_DIMS is OpenCV's CV_MAX_DIM: the largest rank a cv::Mat has.
#define OCVDNN_MAX_DIMS 32

char* ocvdnn_read_onnx(const void* data, size_t len, OcvNet* out);
void ocvdnn_net_free(OcvNet net);
char* ocvdnn_set_preferable(OcvNet net, int backend, int target);
// mat is a cv::Mat* (gocv.Mat.Ptr()); the net keeps a reference to its data.
char* ocvdnn_set_input(OcvNet net, void* mat, const char* name);
char* ocvdnn_forward(OcvNet net, const char** names, int n, OcvBlobs* out);

int ocvdnn_blobs_len(OcvBlobs blobs);
// ocvdnn_blob describes blob i: its cv type, rank and sizes (sizes has room
// for OCVDNN_MAX_DIMS). It returns the float data, or NULL when the blob is
// empty or not a continuous CV_32F Mat.
const float* ocvdnn_blob(OcvBlobs blobs, int i, int* type, int* ndims, int* sizes);
void ocvdnn_blobs_free(OcvBlobs blobs);

// ocvdnn_has_target reports whether cv::dnn::getAvailableTargets(backend)
// lists target: 1 yes, 0 no, -1 the query itself failed.
int ocvdnn_has_target(int backend, int target);
// ocvdnn_opencl_is_gpu reports whether OpenCV's default OpenCL device is a
// GPU: OpenCV DNN silently runs on the CPU otherwise.
int ocvdnn_opencl_is_gpu(void);
void ocvdnn_set_num_threads(int n);
int ocvdnn_get_num_threads(void);
// ocvdnn_build_line returns the first line of cv::getBuildInformation()
// containing key, trimmed, or NULL; the caller frees it.
char* ocvdnn_build_line(const char* key);

#ifdef __cplusplus
}
#endif

#endif
