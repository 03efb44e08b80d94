// See shim.h: every entry point turns C++ exceptions into error strings so
// that none unwinds through cgo.
#include "shim.h"

#include <stdlib.h>
#include <string.h>

#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/core/ocl.hpp>
#include <opencv2/dnn.hpp>

namespace {

char* dup(const std::string& s) {
    char* p = static_cast<char*>(malloc(s.size() + 1));
    if (p != NULL) {
        memcpy(p, s.c_str(), s.size() + 1);
    }
    return p;
}

// cv::Exception::what() is the full "OpenCV(4.6.0) file:line: error: ..."
// text; msg alone is the useful part and keeps errors one line.
char* fail(const cv::Exception& e) { return dup(e.err.empty() ? std::string(e.what()) : e.err); }
char* fail(const std::exception& e) { return dup(e.what()); }
char* fail_unknown() { return dup("unknown C++ exception"); }

}  // namespace

#define OCVDNN_CATCH                              \
    catch (const cv::Exception& e) { return fail(e); } \
    catch (const std::exception& e) { return fail(e); } \
    catch (...) { return fail_unknown(); }

extern "C" {

char* ocvdnn_read_onnx(const void* data, size_t len, OcvNet* out) {
    *out = NULL;
    try {
        cv::dnn::Net net = cv::dnn::readNetFromONNX(static_cast<const char*>(data), len);
        if (net.empty()) {
            return dup("OpenCV returned an empty network");
        }
        *out = new cv::dnn::Net(net);
        return NULL;
    }
    OCVDNN_CATCH
}

void ocvdnn_net_free(OcvNet net) { delete static_cast<cv::dnn::Net*>(net); }

char* ocvdnn_set_preferable(OcvNet net, int backend, int target) {
    try {
        cv::dnn::Net* n = static_cast<cv::dnn::Net*>(net);
        n->setPreferableBackend(backend);
        n->setPreferableTarget(target);
        return NULL;
    }
    OCVDNN_CATCH
}

char* ocvdnn_set_input(OcvNet net, void* mat, const char* name) {
    try {
        static_cast<cv::dnn::Net*>(net)->setInput(*static_cast<cv::Mat*>(mat), name);
        return NULL;
    }
    OCVDNN_CATCH
}

char* ocvdnn_forward(OcvNet net, const char** names, int n, OcvBlobs* out) {
    *out = NULL;
    try {
        std::vector<cv::String> outNames(names, names + n);
        std::vector<cv::Mat>* blobs = new std::vector<cv::Mat>();
        try {
            static_cast<cv::dnn::Net*>(net)->forward(*blobs, outNames);
        } catch (...) {
            delete blobs;
            throw;
        }
        *out = blobs;
        return NULL;
    }
    OCVDNN_CATCH
}

int ocvdnn_blobs_len(OcvBlobs blobs) {
    return static_cast<int>(static_cast<std::vector<cv::Mat>*>(blobs)->size());
}

const float* ocvdnn_blob(OcvBlobs blobs, int i, int* type, int* ndims, int* sizes) {
    const cv::Mat& m = (*static_cast<std::vector<cv::Mat>*>(blobs))[i];
    *type = m.type();
    *ndims = m.dims;
    for (int d = 0; d < m.dims && d < OCVDNN_MAX_DIMS; d++) {
        sizes[d] = m.size[d];
    }
    if (m.empty() || m.type() != CV_32F || !m.isContinuous()) {
        return NULL;
    }
    return m.ptr<float>();
}

void ocvdnn_blobs_free(OcvBlobs blobs) { delete static_cast<std::vector<cv::Mat>*>(blobs); }

int ocvdnn_has_target(int backend, int target) {
    try {
        std::vector<cv::dnn::Target> ts =
            cv::dnn::getAvailableTargets(static_cast<cv::dnn::Backend>(backend));
        for (size_t i = 0; i < ts.size(); i++) {
            if (ts[i] == target) {
                return 1;
            }
        }
        return 0;
    } catch (...) {
        return -1;
    }
}

int ocvdnn_opencl_is_gpu(void) {
    try {
        return cv::ocl::useOpenCL() && cv::ocl::Device::getDefault().type() == cv::ocl::Device::TYPE_GPU;
    } catch (...) {
        return 0;
    }
}

void ocvdnn_set_num_threads(int n) { cv::setNumThreads(n); }

int ocvdnn_get_num_threads(void) { return cv::getNumThreads(); }

char* ocvdnn_build_line(const char* key) {
    try {
        std::istringstream info(cv::getBuildInformation());
        std::string line;
        while (std::getline(info, line)) {
            if (line.find(key) == std::string::npos) {
                continue;
            }
            size_t b = line.find_first_not_of(" \t");
            size_t e = line.find_last_not_of(" \t\r");
            return dup(b == std::string::npos ? std::string() : line.substr(b, e - b + 1));
        }
        return NULL;
    } catch (...) {
        return NULL;
    }
}

}  // extern "C"
