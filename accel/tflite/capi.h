// C side of package tflite: the TensorFlow Lite C API reached through
// dlopen/dlsym, so nothing here is linked against libtensorflowlite_c.so.
//
// Every function of the runtime is called through a typed pointer kept in a
// faced_tflite struct (one per Backend); the small faced_* wrappers exist
// because Go cannot call a C function pointer directly.

#ifndef FACED_ACCEL_TFLITE_CAPI_H_
#define FACED_ACCEL_TFLITE_CAPI_H_

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/c/c_api.h"
#include "tensorflow/lite/c/common.h"  // TfLiteDelegate's fields

// ---------------------------------------------------------------------------
// Declarations the shipped headers lack or that C cannot compile.

// TfLiteXNNPackDelegateOptions as TensorFlow Lite 2.5 to 2.9.0 lay it out
// (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h):
//
//   typedef struct {
//     int32_t num_threads;  // 0 or negative: no thread pool
//     uint32_t flags;       // TFLITE_XNNPACK_DELEGATE_FLAG_QS8 | ..._QU8 | ...
//   } TfLiteXNNPackDelegateOptions;
//
// The header is not shipped by tfjs-tflite-node. The v2.9.1 header appends
// `struct TfLiteXNNPackDelegateWeightsCache* weights_cache`; the 2.9.0 binary
// we pin does not have it: its TfLiteXNNPackDelegateOptionsDefault returns
// the struct in %eax alone (8 bytes), TfLiteXNNPackDelegateCreate copies
// exactly 8 bytes of *options, and TfLiteXNNPackDelegateWeightsCacheCreate
// is not exported. faced_xnnpack_options_padded adds zeroed room after the
// 8 bytes so that a 2.9.1 build reads a NULL weights_cache, never stack
// garbage. Both layouts are returned in registers, so calling
// TfLiteXNNPackDelegateOptionsDefault through this prototype is safe for
// them; later releases (2.10+) grow the struct past 16 bytes, which is why
// the Go side only uses this layout for versions 2.5 to 2.9.
typedef struct {
  int32_t num_threads;
  uint32_t flags;
} faced_xnnpack_options;

typedef struct {
  faced_xnnpack_options options;
  void* reserved[6];  // zero: weights_cache and any later pointer fields
} faced_xnnpack_options_padded;

typedef faced_xnnpack_options (*faced_xnnpack_options_default_fn)(void);
typedef TfLiteDelegate* (*faced_xnnpack_create_fn)(
    const faced_xnnpack_options* options);
typedef void (*faced_delegate_delete_fn)(TfLiteDelegate* delegate);

// TfLiteExternalDelegateOptions, copied from
// tensorflow/lite/delegates/external/external_delegate.h as shipped in
// .deps/include. That header is C++ only (a `const int` array bound and a
// self-referencing typedef), so C code cannot include it; the layout below
// is the same: 8 + 4 (+4 padding) + 256*8 + 256*8 + 8 = 4120 bytes, and the
// shipped libexternal_delegate_obj.so reads keys at offset 16 and values at
// offset 2064.
#define FACED_EXTERNAL_DELEGATE_MAX_OPTIONS 256
typedef struct faced_external_delegate_options {
  const char* lib_path;
  int count;
  const char* keys[FACED_EXTERNAL_DELEGATE_MAX_OPTIONS];
  const char* values[FACED_EXTERNAL_DELEGATE_MAX_OPTIONS];
  TfLiteStatus (*insert)(struct faced_external_delegate_options* options,
                         const char* key, const char* value);
} faced_external_delegate_options;

typedef faced_external_delegate_options (*faced_external_options_default_fn)(
    const char* lib_path);
typedef TfLiteDelegate* (*faced_external_create_fn)(
    const faced_external_delegate_options* options);

// The two symbols every TensorFlow Lite external delegate plugin (such as
// libedgetpu.so.1) exports; see tensorflow/lite/delegates/external/README.md.
typedef TfLiteDelegate* (*faced_plugin_create_fn)(
    char** options_keys, char** options_values, size_t num_options,
    void (*report_error)(const char*));
typedef void (*faced_plugin_destroy_fn)(TfLiteDelegate* delegate);

// ---------------------------------------------------------------------------
// The loaded runtime.

typedef struct faced_tflite {
  void* handle;           // libtensorflowlite_c.so
  void* external_handle;  // libexternal_delegate_obj.so (edgetpu only)
  void* plugin_handle;    // libedgetpu.so.1 (edgetpu only)

  __typeof__(&TfLiteVersion) Version;
  __typeof__(&TfLiteModelCreate) ModelCreate;
  __typeof__(&TfLiteModelDelete) ModelDelete;
  __typeof__(&TfLiteInterpreterOptionsCreate) OptionsCreate;
  __typeof__(&TfLiteInterpreterOptionsDelete) OptionsDelete;
  __typeof__(&TfLiteInterpreterOptionsSetNumThreads) OptionsSetNumThreads;
  __typeof__(&TfLiteInterpreterOptionsAddDelegate) OptionsAddDelegate;
  __typeof__(&TfLiteInterpreterOptionsSetErrorReporter) OptionsSetErrorReporter;
  __typeof__(&TfLiteInterpreterCreate) InterpreterCreate;
  __typeof__(&TfLiteInterpreterDelete) InterpreterDelete;
  __typeof__(&TfLiteInterpreterGetInputTensorCount) GetInputTensorCount;
  __typeof__(&TfLiteInterpreterGetInputTensor) GetInputTensor;
  __typeof__(&TfLiteInterpreterResizeInputTensor) ResizeInputTensor;
  __typeof__(&TfLiteInterpreterAllocateTensors) AllocateTensors;
  __typeof__(&TfLiteInterpreterInvoke) Invoke;
  __typeof__(&TfLiteInterpreterGetOutputTensorCount) GetOutputTensorCount;
  __typeof__(&TfLiteInterpreterGetOutputTensor) GetOutputTensor;
  __typeof__(&TfLiteTensorType) TensorType;
  __typeof__(&TfLiteTensorNumDims) TensorNumDims;
  __typeof__(&TfLiteTensorDim) TensorDim;
  __typeof__(&TfLiteTensorByteSize) TensorByteSize;
  __typeof__(&TfLiteTensorData) TensorData;
  __typeof__(&TfLiteTensorName) TensorName;
  __typeof__(&TfLiteTensorQuantizationParams) TensorQuantizationParams;

  // Optional: NULL when the runtime was built without XNNPACK.
  faced_xnnpack_options_default_fn XNNPackOptionsDefault;
  faced_xnnpack_create_fn XNNPackCreate;
  faced_delegate_delete_fn XNNPackDelete;

  // Set by faced_tflite_load_external and faced_tflite_load_plugin.
  faced_external_options_default_fn ExternalOptionsDefault;
  faced_external_create_fn ExternalCreate;
  faced_delegate_delete_fn ExternalDelete;
  faced_plugin_create_fn PluginCreate;
  faced_plugin_destroy_fn PluginDestroy;

  // dlerror() text of the last failed load, copied because dlerror's buffer
  // is per thread and Go may read it from another one.
  char err[512];
} faced_tflite;

// Loading. Each returns 0 on success, else -1 with l->err set; on failure
// the handles opened so far stay in l for faced_tflite_unload to close.
int faced_tflite_load(faced_tflite* l, const char* path);
int faced_tflite_load_external(faced_tflite* l, const char* path);
int faced_tflite_load_plugin(faced_tflite* l, const char* path);
// Probes the plugin: 0 if it creates a delegate (an Edge TPU is present).
int faced_tflite_probe_plugin(faced_tflite* l);
void faced_tflite_unload(faced_tflite* l);

// Error messages the runtime reports for one interpreter, collected so they
// can be returned in Go errors instead of going to stderr.
typedef struct {
  char msg[1024];
  size_t len;
} faced_errbuf;

void faced_options_set_reporter(faced_tflite* l,
                                TfLiteInterpreterOptions* options,
                                faced_errbuf* e);

// Delegates. NULL when the delegate cannot be created.
TfLiteDelegate* faced_xnnpack_create(faced_tflite* l, int num_threads,
                                     int use_options);
void faced_xnnpack_delete(faced_tflite* l, TfLiteDelegate* d);
TfLiteDelegate* faced_external_create(faced_tflite* l, const char* lib_path);
void faced_external_delete(faced_tflite* l, TfLiteDelegate* d);

// Thin wrappers over the function pointers.
const char* faced_version(faced_tflite* l);
TfLiteModel* faced_model_create(faced_tflite* l, const void* data, size_t n);
void faced_model_delete(faced_tflite* l, TfLiteModel* m);
TfLiteInterpreterOptions* faced_options_create(faced_tflite* l);
void faced_options_delete(faced_tflite* l, TfLiteInterpreterOptions* o);
void faced_options_set_num_threads(faced_tflite* l, TfLiteInterpreterOptions* o,
                                   int32_t n);
void faced_options_add_delegate(faced_tflite* l, TfLiteInterpreterOptions* o,
                                TfLiteDelegate* d);
TfLiteInterpreter* faced_interpreter_create(faced_tflite* l,
                                            const TfLiteModel* m,
                                            const TfLiteInterpreterOptions* o);
void faced_interpreter_delete(faced_tflite* l, TfLiteInterpreter* it);
int32_t faced_input_count(faced_tflite* l, const TfLiteInterpreter* it);
TfLiteTensor* faced_input_tensor(faced_tflite* l, const TfLiteInterpreter* it,
                                 int32_t i);
TfLiteStatus faced_resize_input(faced_tflite* l, TfLiteInterpreter* it,
                                int32_t i, const int* dims, int32_t n);
TfLiteStatus faced_allocate(faced_tflite* l, TfLiteInterpreter* it);
TfLiteStatus faced_invoke(faced_tflite* l, TfLiteInterpreter* it);
int32_t faced_output_count(faced_tflite* l, const TfLiteInterpreter* it);
const TfLiteTensor* faced_output_tensor(faced_tflite* l,
                                        const TfLiteInterpreter* it, int32_t i);
TfLiteType faced_tensor_type(faced_tflite* l, const TfLiteTensor* t);
int32_t faced_tensor_num_dims(faced_tflite* l, const TfLiteTensor* t);
int32_t faced_tensor_dim(faced_tflite* l, const TfLiteTensor* t, int32_t i);
size_t faced_tensor_byte_size(faced_tflite* l, const TfLiteTensor* t);
void* faced_tensor_data(faced_tflite* l, const TfLiteTensor* t);
const char* faced_tensor_name(faced_tflite* l, const TfLiteTensor* t);
TfLiteQuantizationParams faced_tensor_quant(faced_tflite* l,
                                            const TfLiteTensor* t);

#endif  // FACED_ACCEL_TFLITE_CAPI_H_
