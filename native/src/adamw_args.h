// The hyperparameters of the AdamW ops (adamwStep on both twins, multiAdamw on CUDA; fields in
// native/KERNELS.md), read and checked once here, with the bias corrections of the step.
#pragma once
#include <cmath>
#include "args.h"

namespace mamba {

struct AdamwHyper {
  double lr, beta1, beta2, eps;
  double gradScale;  // each gradient is read as g * gradScale (the global-norm clip's factor; 1 without one)
  int64_t step;      // 1-based
  double c1, c2;     // bias corrections 1 / (1 - beta^step)
};

// Fields lr, beta1, beta2, eps, step, gradScale (optional, default 1).
inline AdamwHyper read_adamw_hyper(const ArgObject& a) {
  AdamwHyper h{};
  h.lr = a.number("lr");
  h.beta1 = a.number("beta1");
  h.beta2 = a.number("beta2");
  h.eps = a.number("eps");
  h.step = a.integer("step");
  h.gradScale = a.has("gradScale") ? a.number("gradScale") : 1.0;
  a.require(std::isfinite(h.gradScale) && h.gradScale > 0,
            "gradScale must be a finite number > 0, got " + std::to_string(h.gradScale));
  a.require(h.step >= 1, "step is 1-based and must be >= 1, got " + std::to_string(h.step));
  a.require(h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1, "beta1 and beta2 must be in [0, 1)");
  h.c1 = 1.0 / (1.0 - std::pow(h.beta1, (double)h.step));
  h.c2 = 1.0 / (1.0 - std::pow(h.beta2, (double)h.step));
  return h;
}

}  // namespace mamba
