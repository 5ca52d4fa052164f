/*
 * aff.cu — the fusion arithmetic of AFF (DESIGN.md §3, fbp.h aff_fuse_*) as one forward
 * and one backward kernel.
 *
 * Why fused: composed from tensor ops, relu(s·(F + sigmoid(L + G)⊙(S − F))) is 7
 * elementwise kernels forward and about 12 backward, each streaming (N,C,H,W) tensors
 * through memory. The forward is one grid-stride pass; the backward gives each (n, c)
 * plane to one block, so dG (N,C) is a block reduction with no atomics (deterministic),
 * recomputing w and the ReLU mask from the inputs as the ABI specifies.
 */
#include <math.h>

#include "internal.cuh"

static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static __global__ void aff_forward_kernel(float *__restrict__ out, const float *__restrict__ S,
                                          const float *__restrict__ F,
                                          const float *__restrict__ L,
                                          const float *__restrict__ G, float scale, int64_t n,
                                          int64_t HW) {
  GRID_STRIDE(i, n) {
    float w = sigmoid(L[i] + G[i / HW]);
    float f = F[i];
    float v = scale * (f + w * (S[i] - f));
    out[i] = v > 0.0f ? v : (v == v ? 0.0f : v); /* ReLU; NaN propagates */
  }
}

/* One block per plane (grid-stride over planes); blockDim a multiple of 32. */
static __global__ void aff_backward_kernel(float *__restrict__ dS, float *__restrict__ dF,
                                           float *__restrict__ dL, float *__restrict__ dG,
                                           const float *__restrict__ dout,
                                           const float *__restrict__ S,
                                           const float *__restrict__ F,
                                           const float *__restrict__ L,
                                           const float *__restrict__ G, float scale,
                                           int64_t planes, int64_t HW) {
  for (int64_t nc = blockIdx.x; nc < planes; nc += gridDim.x) {
    float g = G[nc];
    double sum = 0;
    for (int64_t j = threadIdx.x; j < HW; j += blockDim.x) {
      int64_t i = nc * HW + j;
      float w = sigmoid(L[i] + g);
      float f = F[i], diff = S[i] - f;
      float v = scale * (f + w * diff);
      float d = v > 0.0f ? scale * dout[i] : 0.0f; /* through ReLU and the scale */
      dS[i] = d * w;
      dF[i] = d - d * w;
      float gl = d * diff * w * (1.0f - w);
      dL[i] = gl;
      sum += gl;
    }
    sum = block_sum(sum);
    if (threadIdx.x == 0) dG[nc] = (float)sum;
  }
}

int impl_aff_fuse_forward(float *out, const float *S, const float *F, const float *L,
                          const float *G, float scale, int N, int C, int H, int W) {
  int64_t HW = (int64_t)H * W, n = (int64_t)N * C * HW;
  aff_forward_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, S, F, L, G,
                                                                              scale, n, HW);
  LAUNCH_CHECK("aff_forward_kernel");
  return 0;
}

int impl_aff_fuse_backward(float *dS, float *dF, float *dL, float *dG, const float *dout,
                           const float *S, const float *F, const float *L, const float *G,
                           float scale, int N, int C, int H, int W) {
  int64_t HW = (int64_t)H * W, planes = (int64_t)N * C;
  /* Small planes (7×7 in layer4) get a small block, so few threads idle. */
  int threads = HW >= 256 ? 256 : (int)((HW + 31) / 32 * 32);
  unsigned g = (unsigned)(planes < 65536 ? planes : 65536);
  aff_backward_kernel<<<g, threads, 0, fbp_stream()>>>(dS, dF, dL, dG, dout, S, F, L, G, scale,
                                                        planes, HW);
  LAUNCH_CHECK("aff_backward_kernel");
  return 0;
}
