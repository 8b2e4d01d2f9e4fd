#include "ddtrain/solvers/line_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ddtrain/error.hpp"
#include "ddtrain/enum_names.hpp"
#include "ddtrain/solvers/host_values.hpp"

namespace ddtrain {

namespace {
constexpr NameTable<LineSearchType, 2> kLineSearchNames{
    {{LineSearchType::kStrongWolfe, "strong_wolfe"}, {LineSearchType::kArmijo, "armijo"}}};
}  // namespace

LineSearchType parse_line_search(const std::string& name) {
  return parse_name(kLineSearchNames, name, "line search");
}
std::string to_string(LineSearchType type) { return name_of(kLineSearchNames, type); }

std::string LineSearchOptions::validate(const std::string& path) const {
  const std::string& p = path;
  if (!(c1 > 0 && c1 < 1)) return p + "c1 must be in (0, 1)";
  if (!(c2 > c1 && c2 < 1)) return p + "c2 must be in (" + p + "c1, 1)";
  if (max_evaluations < 1) return p + "max_evaluations must be >= 1";
  if (!(tolerance_change >= 0)) return p + "tolerance_change must be >= 0";
  if (!(backtrack_factor > 0 && backtrack_factor < 1)) return p + "backtrack_factor must be in (0, 1)";
  return "";
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to the bounds;
/// the midpoint when the data are non-finite or the cubic has no minimiser.
double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                         double lo, double hi) {
  if (!(std::isfinite(f1) && std::isfinite(f2) && std::isfinite(g1) && std::isfinite(g2)) ||
      x1 == x2)
    return 0.5 * (lo + hi);
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (d2_square < 0) return 0.5 * (lo + hi);
  const double d2 = std::sqrt(d2_square);
  const double min_pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                  : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
  if (!std::isfinite(min_pos)) return 0.5 * (lo + hi);
  return std::min(std::max(min_pos, lo), hi);
}

struct Point {
  double t = 0, f = 0, gtd = 0;
  torch::Tensor g;
};

class Evaluator {
 public:
  Evaluator(Objective& objective, const torch::Tensor& x, const torch::Tensor& d)
      : objective_(objective), x_(x), d_(d), trial_(torch::empty_like(x)) {}
  Point at(double t) {
    trial_.copy_(x_).add_(d_, t);
    Point p;
    p.t = t;
    p.g = torch::empty_like(x_);
    p.f = objective_.evaluate(trial_, &p.g);
    ++evaluations;
    if (!std::isfinite(p.f)) {
      p.f = kInf;  // non-finite: "too long"
      p.gtd = kInf;
    } else {
      p.gtd = p.g.dot(d_).item<double>();
      if (!std::isfinite(p.gtd)) {
        p.f = kInf;
        p.gtd = kInf;
      }
    }
    return p;
  }
  int evaluations = 0;

 private:
  Objective& objective_;
  const torch::Tensor& x_;
  const torch::Tensor& d_;
  torch::Tensor trial_;
};

LineSearchResult finish(const Point& p, double f0, bool conditions, int evaluations) {
  LineSearchResult r;
  r.step = p.t;
  r.loss = p.f;
  r.gradient = p.g;
  r.evaluations = evaluations;
  r.wolfe = conditions;
  r.decreased = p.t > 0 && p.f < f0;
  return r;
}

LineSearchResult strong_wolfe(Objective& objective, const torch::Tensor& x, double f0,
                              const torch::Tensor& g0, const torch::Tensor& d, double t,
                              const LineSearchOptions& o) {
  const auto [gtd0, d_norm] = host_values(g0.dot(d), d.abs().max());  // one device wait
  Evaluator eval(objective, x, d);
  Point start{0.0, f0, gtd0, g0};
  Point prev = start;
  Point cur = eval.at(t);
  Point bracket[2];
  bool done = false, bracketed = false;
  int iterations = 0;
  // Bracketing phase.
  while (iterations < o.max_evaluations) {
    if (cur.f > f0 + o.c1 * cur.t * gtd0 || (iterations > 1 && cur.f >= prev.f)) {
      bracket[0] = prev;
      bracket[1] = cur;
      bracketed = true;
      break;
    }
    if (std::abs(cur.gtd) <= -o.c2 * gtd0) {
      done = true;
      break;
    }
    if (cur.gtd >= 0) {
      bracket[0] = prev;
      bracket[1] = cur;
      bracketed = true;
      break;
    }
    if (eval.evaluations >= o.max_evaluations) break;
    const double min_step = cur.t + 0.01 * (cur.t - prev.t);
    const double max_step = cur.t * 10;
    const double next = cubic_interpolate(prev.t, prev.f, prev.gtd, cur.t, cur.f, cur.gtd,
                                          min_step, max_step);
    prev = cur;
    cur = eval.at(next);
    ++iterations;
  }
  if (done) return finish(cur, f0, true, eval.evaluations);
  if (!bracketed) {
    // Out of evaluations while still expanding: keep the best point seen.
    return finish(cur.f < prev.f ? cur : prev, f0, false, eval.evaluations);
  }
  // Zoom phase.
  bool insufficient_progress = false;
  int low = bracket[0].f <= bracket[1].f ? 0 : 1;
  while (eval.evaluations < o.max_evaluations) {
    const double lo_t = std::min(bracket[0].t, bracket[1].t);
    const double hi_t = std::max(bracket[0].t, bracket[1].t);
    if ((hi_t - lo_t) * d_norm < o.tolerance_change) break;
    double next = cubic_interpolate(bracket[0].t, bracket[0].f, bracket[0].gtd, bracket[1].t,
                                    bracket[1].f, bracket[1].gtd, lo_t, hi_t);
    // Keep away from the bracket ends so the bracket shrinks.
    const double eps = 0.1 * (hi_t - lo_t);
    if (std::min(hi_t - next, next - lo_t) < eps) {
      if (insufficient_progress || next >= hi_t || next <= lo_t) {
        next = std::abs(next - hi_t) < std::abs(next - lo_t) ? hi_t - eps : lo_t + eps;
        insufficient_progress = false;
      } else {
        insufficient_progress = true;
      }
    } else {
      insufficient_progress = false;
    }
    Point p = eval.at(next);
    const int high = 1 - low;
    if (p.f > f0 + o.c1 * p.t * gtd0 || p.f >= bracket[low].f) {
      bracket[high] = p;
    } else {
      if (std::abs(p.gtd) <= -o.c2 * gtd0) {
        done = true;
      } else if (p.gtd * (bracket[high].t - bracket[low].t) >= 0) {
        bracket[high] = bracket[low];
      }
      bracket[low] = p;
    }
    low = bracket[0].f <= bracket[1].f ? 0 : 1;
    if (done) break;
  }
  return finish(bracket[low], f0, done, eval.evaluations);
}

LineSearchResult armijo(Objective& objective, const torch::Tensor& x, double f0,
                        const torch::Tensor& g0, const torch::Tensor& d, double t,
                        const LineSearchOptions& o) {
  const double gtd0 = g0.dot(d).item<double>();
  Evaluator eval(objective, x, d);
  Point best{0.0, f0, gtd0, g0};
  while (eval.evaluations < o.max_evaluations) {
    Point p = eval.at(t);
    if (p.f <= f0 + o.c1 * t * gtd0) return finish(p, f0, true, eval.evaluations);
    if (p.f < best.f) best = p;
    t *= o.backtrack_factor;
  }
  return finish(best, f0, false, eval.evaluations);
}

}  // namespace

LineSearchResult line_search(Objective& objective, const torch::Tensor& x, double f0,
                             const torch::Tensor& g0, const torch::Tensor& d, double initial_step,
                             const LineSearchOptions& options) {
  DDTRAIN_CHECK(initial_step > 0, InvalidArgument, "line search initial step must be > 0");
  if (options.type == LineSearchType::kArmijo)
    return armijo(objective, x, f0, g0, d, initial_step, options);
  return strong_wolfe(objective, x, f0, g0, d, initial_step, options);
}

}  // namespace ddtrain
