/*
 * libs.h — the few cuDNN 9 and cuBLAS types, constants and entry points the cuda backend
 * uses, declared here so the library builds with nvcc alone (no cuDNN or cuBLAS headers
 * or libraries at build time). runtime.cu opens libcudnn.so.9 and libcublas.so.13 (or .12)
 * with dlopen in fbp_init (libfind.h) and fills `fbp_dl` with dlsym; every call site goes
 * through it. Batch norm has own kernels (batchnorm.cu), so no cuDNN batch-norm entry.
 *
 * Values and prototypes follow cuDNN 9's cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h and
 * cuBLAS's cublas_api.h. Enums are passed as int (their ABI size on every platform CUDA
 * supports). The legacy cuDNN API used here (tensor/filter/convolution descriptors,
 * cudnnFind*AlgorithmEx, cudnnGet*Algorithm_v7, cudnnConvolution*) is deprecated in
 * cuDNN 9 but still exported by its shim library libcudnn.so.9.
 */
#ifndef FBP_CUDA_LIBS_H
#define FBP_CUDA_LIBS_H

#include <stddef.h>

#include <cuda_runtime.h>

/* ---- cuDNN ---------------------------------------------------------------------------- */

typedef struct cudnnContext *cudnnHandle_t;
typedef struct cudnnTensorStruct *cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct *cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct *cudnnConvolutionDescriptor_t;
typedef int cudnnStatus_t;

enum {
  CUDNN_STATUS_SUCCESS = 0,
  CUDNN_DATA_FLOAT = 0,
  CUDNN_TENSOR_NCHW = 0,
  CUDNN_CROSS_CORRELATION = 1,
  /* cudnnMathType_t */
  CUDNN_DEFAULT_MATH = 0,
  CUDNN_TENSOR_OP_MATH = 1,
  CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
  CUDNN_FMA_MATH = 3,
  /* cudnnDeterminism_t */
  CUDNN_NON_DETERMINISTIC = 0,
  CUDNN_DETERMINISTIC = 1,
};

/* One result of cudnnFind...AlgorithmEx or cudnnGet...Algorithm_v7: the same layout for the
 * forward, backward-data and backward-filter variants (their algo enums differ, all
 * int-sized). */
typedef struct {
  int algo;
  cudnnStatus_t status;
  float time;    /* ms, Find only */
  size_t memory; /* workspace bytes */
  int determinism;
  int mathType;
  int reserved[3];
} cudnnConvolutionAlgoPerf_t;

/* ---- cuBLAS --------------------------------------------------------------------------- */

typedef struct cublasContext *cublasHandle_t;
typedef int cublasStatus_t;

enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
};

/* ---- the table filled by dlsym -------------------------------------------------------- */

/* X(return type, name, parameter list): every symbol the backend resolves. */
#define FBP_CUDNN_SYMBOLS(X)                                                                \
  X(size_t, cudnnGetVersion, (void))                                                        \
  X(const char *, cudnnGetErrorString, (cudnnStatus_t))                                     \
  X(cudnnStatus_t, cudnnCreate, (cudnnHandle_t *))                                          \
  X(cudnnStatus_t, cudnnSetStream, (cudnnHandle_t, cudaStream_t))                           \
  X(cudnnStatus_t, cudnnCreateTensorDescriptor, (cudnnTensorDescriptor_t *))                \
  X(cudnnStatus_t, cudnnDestroyTensorDescriptor, (cudnnTensorDescriptor_t))                 \
  X(cudnnStatus_t, cudnnSetTensor4dDescriptor,                                              \
    (cudnnTensorDescriptor_t, int format, int dtype, int n, int c, int h, int w))           \
  X(cudnnStatus_t, cudnnCreateFilterDescriptor, (cudnnFilterDescriptor_t *))                \
  X(cudnnStatus_t, cudnnDestroyFilterDescriptor, (cudnnFilterDescriptor_t))                 \
  X(cudnnStatus_t, cudnnSetFilter4dDescriptor,                                              \
    (cudnnFilterDescriptor_t, int dtype, int format, int k, int c, int h, int w))           \
  X(cudnnStatus_t, cudnnCreateConvolutionDescriptor, (cudnnConvolutionDescriptor_t *))      \
  X(cudnnStatus_t, cudnnDestroyConvolutionDescriptor, (cudnnConvolutionDescriptor_t))       \
  X(cudnnStatus_t, cudnnSetConvolution2dDescriptor,                                         \
    (cudnnConvolutionDescriptor_t, int pad_h, int pad_w, int u, int v, int dil_h,           \
     int dil_w, int mode, int compute_type))                                                \
  X(cudnnStatus_t, cudnnSetConvolutionMathType, (cudnnConvolutionDescriptor_t, int))       \
  X(cudnnStatus_t, cudnnSetConvolutionGroupCount, (cudnnConvolutionDescriptor_t, int))     \
  X(cudnnStatus_t, cudnnFindConvolutionForwardAlgorithmEx,                                  \
    (cudnnHandle_t, cudnnTensorDescriptor_t, const void *x, cudnnFilterDescriptor_t,        \
     const void *w, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *y,         \
     int requested, int *returned, cudnnConvolutionAlgoPerf_t *, void *ws, size_t ws_bytes)) \
  X(cudnnStatus_t, cudnnGetConvolutionForwardAlgorithm_v7,                                  \
    (cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,                       \
     cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int requested, int *returned,   \
     cudnnConvolutionAlgoPerf_t *))                                                         \
  X(cudnnStatus_t, cudnnConvolutionForward,                                                 \
    (cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t, const void *x,              \
     cudnnFilterDescriptor_t, const void *w, cudnnConvolutionDescriptor_t, int algo,        \
     void *ws, size_t ws_bytes, const void *beta, cudnnTensorDescriptor_t, void *y))        \
  X(cudnnStatus_t, cudnnFindConvolutionBackwardDataAlgorithmEx,                             \
    (cudnnHandle_t, cudnnFilterDescriptor_t, const void *w, cudnnTensorDescriptor_t,        \
     const void *dy, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *dx,       \
     int requested, int *returned, cudnnConvolutionAlgoPerf_t *, void *ws, size_t ws_bytes)) \
  X(cudnnStatus_t, cudnnGetConvolutionBackwardDataAlgorithm_v7,                             \
    (cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t,                       \
     cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int requested, int *returned,   \
     cudnnConvolutionAlgoPerf_t *))                                                         \
  X(cudnnStatus_t, cudnnConvolutionBackwardData,                                            \
    (cudnnHandle_t, const void *alpha, cudnnFilterDescriptor_t, const void *w,              \
     cudnnTensorDescriptor_t, const void *dy, cudnnConvolutionDescriptor_t, int algo,       \
     void *ws, size_t ws_bytes, const void *beta, cudnnTensorDescriptor_t, void *dx))       \
  X(cudnnStatus_t, cudnnFindConvolutionBackwardFilterAlgorithmEx,                           \
    (cudnnHandle_t, cudnnTensorDescriptor_t, const void *x, cudnnTensorDescriptor_t,        \
     const void *dy, cudnnConvolutionDescriptor_t, cudnnFilterDescriptor_t, void *dw,       \
     int requested, int *returned, cudnnConvolutionAlgoPerf_t *, void *ws, size_t ws_bytes)) \
  X(cudnnStatus_t, cudnnGetConvolutionBackwardFilterAlgorithm_v7,                           \
    (cudnnHandle_t, cudnnTensorDescriptor_t, cudnnTensorDescriptor_t,                       \
     cudnnConvolutionDescriptor_t, cudnnFilterDescriptor_t, int requested, int *returned,   \
     cudnnConvolutionAlgoPerf_t *))                                                         \
  X(cudnnStatus_t, cudnnConvolutionBackwardFilter,                                          \
    (cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t, const void *x,              \
     cudnnTensorDescriptor_t, const void *dy, cudnnConvolutionDescriptor_t, int algo,       \
     void *ws, size_t ws_bytes, const void *beta, cudnnFilterDescriptor_t, void *dw))

/* cuBLAS exports its v2 API under `<name>_v2` (cublas_v2.h maps the plain names to them);
 * runtime.cu tries that name first, then the plain one. */
#define FBP_CUBLAS_SYMBOLS(X)                                                               \
  X(cublasStatus_t, cublasCreate, (cublasHandle_t *))                                       \
  X(cublasStatus_t, cublasSetStream, (cublasHandle_t, cudaStream_t))                        \
  X(cublasStatus_t, cublasGetVersion, (cublasHandle_t, int *))                              \
  X(cublasStatus_t, cublasSetMathMode, (cublasHandle_t, int))                               \
  X(cublasStatus_t, cublasSgemm,                                                            \
    (cublasHandle_t, int transa, int transb, int m, int n, int k, const float *alpha,       \
     const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc))

#define FBP_DL_FIELD(ret, name, params) ret(*name) params;

/* Entry points of the opened libraries (valid once fbp_init succeeded). */
struct fbp_dl_table {
  FBP_CUDNN_SYMBOLS(FBP_DL_FIELD)
  FBP_CUBLAS_SYMBOLS(FBP_DL_FIELD)
};

#endif /* FBP_CUDA_LIBS_H */
