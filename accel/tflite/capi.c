// See capi.h.

#include "capi.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(faced_external_delegate_options) == 4120,
               "TfLiteExternalDelegateOptions layout (external_delegate.h)");
_Static_assert(sizeof(faced_xnnpack_options) == 8,
               "TfLiteXNNPackDelegateOptions layout (xnnpack_delegate.h 2.9)");

static void set_err(faced_tflite* l, const char* prefix, const char* detail) {
  snprintf(l->err, sizeof l->err, "%s%s", prefix, detail ? detail : "");
}

static void* open_lib(faced_tflite* l, const char* path) {
  // RTLD_LOCAL: the runtime's symbols stay out of the global namespace, so
  // another copy of TensorFlow Lite in the process (OpenCV, a plugin) cannot
  // be bound to ours by accident.
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) set_err(l, "", dlerror());
  return h;
}

#define REQUIRE(field, symbol)                          \
  do {                                                  \
    l->field = (__typeof__(l->field))dlsym(h, #symbol); \
    if (l->field == NULL) {                             \
      set_err(l, "missing symbol ", #symbol);           \
      return -1;                                        \
    }                                                   \
  } while (0)

int faced_tflite_load(faced_tflite* l, const char* path) {
  void* h = open_lib(l, path);
  if (h == NULL) return -1;
  l->handle = h;
  REQUIRE(Version, TfLiteVersion);
  REQUIRE(ModelCreate, TfLiteModelCreate);
  REQUIRE(ModelDelete, TfLiteModelDelete);
  REQUIRE(OptionsCreate, TfLiteInterpreterOptionsCreate);
  REQUIRE(OptionsDelete, TfLiteInterpreterOptionsDelete);
  REQUIRE(OptionsSetNumThreads, TfLiteInterpreterOptionsSetNumThreads);
  REQUIRE(OptionsAddDelegate, TfLiteInterpreterOptionsAddDelegate);
  REQUIRE(OptionsSetErrorReporter, TfLiteInterpreterOptionsSetErrorReporter);
  REQUIRE(InterpreterCreate, TfLiteInterpreterCreate);
  REQUIRE(InterpreterDelete, TfLiteInterpreterDelete);
  REQUIRE(GetInputTensorCount, TfLiteInterpreterGetInputTensorCount);
  REQUIRE(GetInputTensor, TfLiteInterpreterGetInputTensor);
  REQUIRE(ResizeInputTensor, TfLiteInterpreterResizeInputTensor);
  REQUIRE(AllocateTensors, TfLiteInterpreterAllocateTensors);
  REQUIRE(Invoke, TfLiteInterpreterInvoke);
  REQUIRE(GetOutputTensorCount, TfLiteInterpreterGetOutputTensorCount);
  REQUIRE(GetOutputTensor, TfLiteInterpreterGetOutputTensor);
  REQUIRE(TensorType, TfLiteTensorType);
  REQUIRE(TensorNumDims, TfLiteTensorNumDims);
  REQUIRE(TensorDim, TfLiteTensorDim);
  REQUIRE(TensorByteSize, TfLiteTensorByteSize);
  REQUIRE(TensorData, TfLiteTensorData);
  REQUIRE(TensorName, TfLiteTensorName);
  REQUIRE(TensorQuantizationParams, TfLiteTensorQuantizationParams);
  // XNNPACK is optional: a runtime built without it still runs models on
  // its builtin kernels.
  l->XNNPackOptionsDefault = (faced_xnnpack_options_default_fn)dlsym(
      h, "TfLiteXNNPackDelegateOptionsDefault");
  l->XNNPackCreate =
      (faced_xnnpack_create_fn)dlsym(h, "TfLiteXNNPackDelegateCreate");
  l->XNNPackDelete =
      (faced_delegate_delete_fn)dlsym(h, "TfLiteXNNPackDelegateDelete");
  if (l->XNNPackCreate == NULL || l->XNNPackDelete == NULL) {
    l->XNNPackCreate = NULL;
    l->XNNPackDelete = NULL;
  }
  return 0;
}

int faced_tflite_load_external(faced_tflite* l, const char* path) {
  void* h = open_lib(l, path);
  if (h == NULL) return -1;
  l->external_handle = h;
  REQUIRE(ExternalOptionsDefault, TfLiteExternalDelegateOptionsDefault);
  REQUIRE(ExternalCreate, TfLiteExternalDelegateCreate);
  REQUIRE(ExternalDelete, TfLiteExternalDelegateDelete);
  return 0;
}

int faced_tflite_load_plugin(faced_tflite* l, const char* path) {
  // The external delegate opens the plugin again by path; opening it here
  // first turns a missing libedgetpu into a start-up error, and keeps it
  // loaded for the Backend's lifetime.
  void* h = open_lib(l, path);
  if (h == NULL) return -1;
  l->plugin_handle = h;
  REQUIRE(PluginCreate, tflite_plugin_create_delegate);
  REQUIRE(PluginDestroy, tflite_plugin_destroy_delegate);
  return 0;
}

int faced_tflite_probe_plugin(faced_tflite* l) {
  TfLiteDelegate* d = l->PluginCreate(NULL, NULL, 0, NULL);
  if (d == NULL) return -1;
  l->PluginDestroy(d);
  return 0;
}

void faced_tflite_unload(faced_tflite* l) {
  if (l->plugin_handle != NULL) dlclose(l->plugin_handle);
  if (l->external_handle != NULL) dlclose(l->external_handle);
  if (l->handle != NULL) dlclose(l->handle);
  l->plugin_handle = l->external_handle = l->handle = NULL;
}

static void report(void* user_data, const char* format, va_list args) {
  faced_errbuf* e = (faced_errbuf*)user_data;
  // Keep the first messages: the runtime reports the cause first and the
  // consequences ("Node number 229 (RESHAPE) failed to prepare") after.
  if (e->len + 3 >= sizeof e->msg) return;
  if (e->len > 0) {
    e->msg[e->len++] = ';';
    e->msg[e->len++] = ' ';
  }
  int n = vsnprintf(e->msg + e->len, sizeof e->msg - e->len, format, args);
  if (n < 0) n = 0;
  e->len += (size_t)n;
  if (e->len >= sizeof e->msg) e->len = sizeof e->msg - 1;
  e->msg[e->len] = 0;
}

void faced_options_set_reporter(faced_tflite* l,
                                TfLiteInterpreterOptions* options,
                                faced_errbuf* e) {
  l->OptionsSetErrorReporter(options, report, e);
}

TfLiteDelegate* faced_xnnpack_create(faced_tflite* l, int num_threads,
                                     int use_options) {
  if (l->XNNPackCreate == NULL) return NULL;
  if (!use_options || l->XNNPackOptionsDefault == NULL) {
    // Unknown options layout: NULL asks for the runtime's defaults, which
    // every version accepts.
    return l->XNNPackCreate(NULL);
  }
  faced_xnnpack_options_padded o;
  memset(&o, 0, sizeof o);
  o.options = l->XNNPackOptionsDefault();
  // XNNPACK starts a thread pool only for num_threads > 1 (1 and 0 both
  // mean the calling thread), like the runtime's own AcquireXNNPACKDelegate.
  if (num_threads > 1) o.options.num_threads = num_threads;
  return l->XNNPackCreate(&o.options);
}

void faced_xnnpack_delete(faced_tflite* l, TfLiteDelegate* d) {
  if (d != NULL && l->XNNPackDelete != NULL) l->XNNPackDelete(d);
}

TfLiteDelegate* faced_external_create(faced_tflite* l, const char* lib_path) {
  faced_external_delegate_options o = l->ExternalOptionsDefault(lib_path);
  TfLiteDelegate* d = l->ExternalCreate(&o);
  if (d == NULL) return NULL;
  // TfLiteExternalDelegateCreate never returns NULL. It allocates a wrapper
  // { create, destroy, TfLiteDelegate* external, TfLiteDelegate wrapper }
  // and returns &wrapper, whose fields it fills in only when the plugin
  // loaded and its tflite_plugin_create_delegate returned a delegate (a
  // missing Edge TPU returns NULL). Otherwise the returned delegate is
  // uninitialised heap memory: applying it crashes, and so does
  // TfLiteExternalDelegateDelete. The constructor does zero `external`
  // before trying, so it tells the two cases apart reliably, whereas data_
  // may hold a stale but valid-looking pointer when the allocator hands back
  // the chunk of an earlier wrapper. This layout is that of the shipped 2.9
  // library and of external_delegate.cc to date. On failure the 72-byte
  // wrapper is leaked rather than deleted.
  TfLiteDelegate* external = ((TfLiteDelegate**)d)[-1];
  if (external == NULL || d->data_ != (void*)((char*)d - 3 * sizeof(void*)))
    return NULL;
  return d;
}

void faced_external_delete(faced_tflite* l, TfLiteDelegate* d) {
  if (d != NULL) l->ExternalDelete(d);
}

const char* faced_version(faced_tflite* l) { return l->Version(); }

TfLiteModel* faced_model_create(faced_tflite* l, const void* data, size_t n) {
  return l->ModelCreate(data, n);
}

void faced_model_delete(faced_tflite* l, TfLiteModel* m) { l->ModelDelete(m); }

TfLiteInterpreterOptions* faced_options_create(faced_tflite* l) {
  return l->OptionsCreate();
}

void faced_options_delete(faced_tflite* l, TfLiteInterpreterOptions* o) {
  l->OptionsDelete(o);
}

void faced_options_set_num_threads(faced_tflite* l, TfLiteInterpreterOptions* o,
                                   int32_t n) {
  l->OptionsSetNumThreads(o, n);
}

void faced_options_add_delegate(faced_tflite* l, TfLiteInterpreterOptions* o,
                                TfLiteDelegate* d) {
  l->OptionsAddDelegate(o, d);
}

TfLiteInterpreter* faced_interpreter_create(faced_tflite* l,
                                            const TfLiteModel* m,
                                            const TfLiteInterpreterOptions* o) {
  return l->InterpreterCreate(m, o);
}

void faced_interpreter_delete(faced_tflite* l, TfLiteInterpreter* it) {
  l->InterpreterDelete(it);
}

int32_t faced_input_count(faced_tflite* l, const TfLiteInterpreter* it) {
  return l->GetInputTensorCount(it);
}

TfLiteTensor* faced_input_tensor(faced_tflite* l, const TfLiteInterpreter* it,
                                 int32_t i) {
  return l->GetInputTensor(it, i);
}

TfLiteStatus faced_resize_input(faced_tflite* l, TfLiteInterpreter* it,
                                int32_t i, const int* dims, int32_t n) {
  return l->ResizeInputTensor(it, i, dims, n);
}

TfLiteStatus faced_allocate(faced_tflite* l, TfLiteInterpreter* it) {
  return l->AllocateTensors(it);
}

TfLiteStatus faced_invoke(faced_tflite* l, TfLiteInterpreter* it) {
  return l->Invoke(it);
}

int32_t faced_output_count(faced_tflite* l, const TfLiteInterpreter* it) {
  return l->GetOutputTensorCount(it);
}

const TfLiteTensor* faced_output_tensor(faced_tflite* l,
                                        const TfLiteInterpreter* it,
                                        int32_t i) {
  return l->GetOutputTensor(it, i);
}

TfLiteType faced_tensor_type(faced_tflite* l, const TfLiteTensor* t) {
  return l->TensorType(t);
}

int32_t faced_tensor_num_dims(faced_tflite* l, const TfLiteTensor* t) {
  return l->TensorNumDims(t);
}

int32_t faced_tensor_dim(faced_tflite* l, const TfLiteTensor* t, int32_t i) {
  return l->TensorDim(t, i);
}

size_t faced_tensor_byte_size(faced_tflite* l, const TfLiteTensor* t) {
  return l->TensorByteSize(t);
}

void* faced_tensor_data(faced_tflite* l, const TfLiteTensor* t) {
  return l->TensorData(t);
}

const char* faced_tensor_name(faced_tflite* l, const TfLiteTensor* t) {
  return l->TensorName(t);
}

TfLiteQuantizationParams faced_tensor_quant(faced_tflite* l,
                                            const TfLiteTensor* t) {
  return l->TensorQuantizationParams(t);
}
