#pragma once
/// @file
/// Partition: parameter subdomains as index ranges into the flat parameter vector, built from
/// layers (contiguous, balanced groups, optional overlap) or from explicit lists.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ddtrain/flat_parameters.hpp"

namespace ddtrain {

/// One parameter subdomain: the layers it was built from and its ranges of the flat vector.
struct Subdomain {
  std::vector<int> layers;    ///< layer indices (empty for name-based subdomains)
  std::vector<Range> ranges;  ///< sorted, non-overlapping, merged ranges of the flat vector
  int64_t size() const;
};

/// Parameter subdomains: a list of Subdomain over a flat vector of dimension().
class Partition {
 public:
  Partition() = default;
  explicit Partition(std::vector<Subdomain> subdomains, int64_t dimension);

  /// `count` contiguous groups of layers, as balanced as possible (the first L % count groups
  /// get one layer more); each group is widened by `overlap` layers on each side.
  static Partition layerwise(const std::vector<Layer>& layers, int count, int overlap = 0);
  /// Explicit groups by layer index, e.g. "0-1,2-3,4-5" or "0,1-2,3"; every layer must be
  /// covered; groups are widened by `overlap` layers on each side.
  static Partition from_spec(const std::vector<Layer>& layers, const std::string& spec,
                             int overlap = 0);
  /// Subdomains given as lists of parameter names (embedding users).
  static Partition from_parameter_names(const FlatParameters& parameters,
                                        const std::vector<std::vector<std::string>>& groups);

  int size() const { return static_cast<int>(subdomains_.size()); }
  const Subdomain& operator[](int s) const { return subdomains_.at(s); }
  const std::vector<Subdomain>& subdomains() const { return subdomains_; }
  int64_t dimension() const { return dimension_; }
  /// True if no flat entry belongs to two subdomains.
  bool disjoint() const;
  /// Number of subdomains covering each flat entry (1 everywhere for a disjoint cover).
  torch::Tensor multiplicity(const torch::TensorOptions& options) const;
  /// Human-readable description, e.g. "3 subdomains: layers 0-1 | 2-3 | 4-6".
  std::string describe() const;

 private:
  std::vector<Subdomain> subdomains_;
  int64_t dimension_ = 0;
};

/// Merges a list of ranges into sorted disjoint ranges.
std::vector<Range> merge_ranges(std::vector<Range> ranges);

}  // namespace ddtrain
