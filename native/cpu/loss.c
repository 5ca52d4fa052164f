/*
 * loss.c — softmax cross-entropy forward/backward.
 *
 * Why this way: the loss is taken from the log-sum-exp of the logits, not from log of
 * the stored probabilities, so confident rows do not underflow to log(0). Per-sample
 * terms and the mean accumulate in double. Targets arrive as floats (every buffer is
 * float32); all of them are validated before anything is written, so a bad label leaves
 * the outputs untouched and the message names the sample. The forward runs serially:
 * classification heads are small (N×K of a few hundred), and a fixed summation order
 * keeps the loss bit-identical from run to run.
 */
#include <math.h>

#include "internal.h"

/* Returns the first sample whose target is not an integer in 0..K-1, or -1. */
static int64_t bad_target(const float *targets, int N, int K) {
  for (int64_t n = 0; n < N; n++) {
    float t = targets[n];
    if (!(t >= 0.0f && t < (float)K && t == floorf(t))) return n;
  }
  return -1;
}

#define CHECK_TARGETS(fn)                                                                \
  do {                                                                                   \
    int64_t bad = bad_target(targets, N, K);                                             \
    if (bad >= 0)                                                                        \
      FAIL("%s: target of sample %lld is %g, expected an integer in 0..%d", fn,          \
           (long long)bad, (double)targets[bad], K - 1);                                 \
  } while (0)

int impl_cross_entropy_forward(float *loss, float *probs, const float *logits,
                               const float *targets, const float *weights, int N, int K) {
  CHECK_TARGETS("cross_entropy_forward");
  double total = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *x = logits + n * K;
    float *p = probs + n * K;
    float mx = -INFINITY;
    for (int k = 0; k < K; k++) mx = x[k] > mx ? x[k] : mx;
    double z = 0;
    for (int k = 0; k < K; k++) {
      float e = expf(x[k] - mx);
      p[k] = e;
      z += e;
    }
    float inv = (float)(1.0 / z);
    for (int k = 0; k < K; k++) p[k] *= inv;
    int t = (int)targets[n];
    double w = weights ? weights[n] : 1.0;
    total += w * (log(z) + (double)mx - (double)x[t]);
  }
  loss[0] = (float)(total / N);
  return 0;
}

int impl_cross_entropy_backward(float *dlogits, const float *dloss, const float *probs,
                                const float *targets, const float *weights, int N, int K) {
  CHECK_TARGETS("cross_entropy_backward");
  float g = dloss[0];
  FBP_PAR_FOR((int64_t)N * K > FBP_PAR_MIN,
    for (int64_t n = 0; n < N; n++) {
      float s = (float)((double)g * (weights ? weights[n] : 1.0) / N);
      int t = (int)targets[n];
      for (int k = 0; k < K; k++) dlogits[n * K + k] = s * (probs[n * K + k] - (k == t));
    });
  return 0;
}
