#include "ddtrain/partition.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "ddtrain/error.hpp"

namespace ddtrain {

int64_t Subdomain::size() const {
  int64_t n = 0;
  for (const Range& r : ranges) n += r.size();
  return n;
}

std::vector<Range> merge_ranges(std::vector<Range> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  std::vector<Range> merged;
  for (const Range& r : ranges) {
    if (r.size() <= 0) continue;
    if (!merged.empty() && r.begin <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, r.end);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

Partition::Partition(std::vector<Subdomain> subdomains, int64_t dimension)
    : subdomains_(std::move(subdomains)), dimension_(dimension) {
  DDTRAIN_CHECK(!subdomains_.empty(), InvalidArgument, "a partition needs at least one subdomain");
  for (auto& s : subdomains_) {
    s.ranges = merge_ranges(s.ranges);
    DDTRAIN_CHECK(!s.ranges.empty(), InvalidArgument, "a subdomain has no parameters");
    DDTRAIN_CHECK(s.ranges.back().end <= dimension_ && s.ranges.front().begin >= 0, InvalidArgument,
                  "a subdomain lies outside the parameter vector");
  }
}

namespace {

Subdomain layer_group(const std::vector<Layer>& layers, int first, int last, int overlap) {
  const int n = static_cast<int>(layers.size());
  Subdomain s;
  for (int l = std::max(0, first - overlap); l <= std::min(n - 1, last + overlap); ++l) {
    s.layers.push_back(l);
    s.ranges.push_back(layers[l].range);
  }
  return s;
}

int64_t total_size(const std::vector<Layer>& layers) {
  return layers.empty() ? 0 : layers.back().range.end;
}

void check_overlap(int overlap) {
  DDTRAIN_CHECK(overlap >= 0, InvalidArgument, "--overlap must be >= 0, got ", overlap);
}

int parse_layer(const std::string& text, int layer_count, const std::string& spec) {
  size_t used = 0;
  int value = -1;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  DDTRAIN_CHECK(used == text.size() && !text.empty(), InvalidArgument, "--partition '", spec,
                "': '", text, "' is not a layer index (expected e.g. 0-1,2-3,4-5)");
  DDTRAIN_CHECK(value >= 0 && value < layer_count, InvalidArgument, "--partition '", spec,
                "': layer ", value, " out of range [0, ", layer_count - 1, "]");
  return value;
}

}  // namespace

Partition Partition::layerwise(const std::vector<Layer>& layers, int count, int overlap) {
  const int n = static_cast<int>(layers.size());
  check_overlap(overlap);
  DDTRAIN_CHECK(count >= 1 && count <= n, InvalidArgument, "--subdomains must be in [1, ", n,
                "] (the model has ", n, " layers), got ", count);
  std::vector<Subdomain> subdomains;
  int first = 0;
  for (int g = 0; g < count; ++g) {
    const int size = n / count + (g < n % count ? 1 : 0);
    subdomains.push_back(layer_group(layers, first, first + size - 1, overlap));
    first += size;
  }
  return Partition(std::move(subdomains), total_size(layers));
}

Partition Partition::from_spec(const std::vector<Layer>& layers, const std::string& spec,
                               int overlap) {
  const int n = static_cast<int>(layers.size());
  check_overlap(overlap);
  std::vector<Subdomain> subdomains;
  std::set<int> covered;
  std::stringstream groups(spec);
  std::string group;
  while (std::getline(groups, group, ',')) {
    const size_t dash = group.find('-');
    const int first = parse_layer(group.substr(0, dash), n, spec);
    const int last = dash == std::string::npos ? first : parse_layer(group.substr(dash + 1), n, spec);
    DDTRAIN_CHECK(first <= last, InvalidArgument, "--partition '", spec, "': empty group '", group, "'");
    for (int l = first; l <= last; ++l) {
      DDTRAIN_CHECK(covered.insert(l).second, InvalidArgument, "--partition '", spec, "': layer ",
                    l, " appears in two groups (use --overlap for overlapping subdomains)");
    }
    subdomains.push_back(layer_group(layers, first, last, overlap));
  }
  DDTRAIN_CHECK(!subdomains.empty(), InvalidArgument, "--partition is empty");
  DDTRAIN_CHECK(static_cast<int>(covered.size()) == n, InvalidArgument, "--partition '", spec,
                "' leaves layers uncovered: every layer 0-", n - 1, " must belong to a group");
  return Partition(std::move(subdomains), total_size(layers));
}

Partition Partition::from_parameter_names(const FlatParameters& parameters,
                                          const std::vector<std::vector<std::string>>& groups) {
  std::vector<Subdomain> subdomains;
  for (const auto& names : groups) {
    Subdomain s;
    for (const auto& name : names) {
      auto it = std::find_if(parameters.entries().begin(), parameters.entries().end(),
                             [&](const ParameterEntry& e) { return e.name == name; });
      DDTRAIN_CHECK(it != parameters.entries().end(), InvalidArgument, "subdomain parameter '",
                    name, "' is not a trainable parameter of the module");
      s.ranges.push_back(it->range);
    }
    subdomains.push_back(std::move(s));
  }
  return Partition(std::move(subdomains), parameters.size());
}

bool Partition::disjoint() const {
  std::vector<Range> all;
  int64_t sum = 0;
  for (const auto& s : subdomains_) {
    for (const auto& r : s.ranges) {
      all.push_back(r);
      sum += r.size();
    }
  }
  int64_t merged = 0;
  for (const auto& r : merge_ranges(all)) merged += r.size();
  return merged == sum;
}

torch::Tensor Partition::multiplicity(const torch::TensorOptions& options) const {
  torch::Tensor m = torch::zeros({dimension_}, options);
  for (const auto& s : subdomains_)
    for (const auto& r : s.ranges) m.narrow(0, r.begin, r.size()).add_(1);
  return m;
}

std::string Partition::describe() const {
  std::ostringstream out;
  out << size() << " subdomain" << (size() == 1 ? "" : "s") << ":";
  for (int s = 0; s < size(); ++s) {
    out << (s ? " |" : "") << " ";
    const auto& layers = subdomains_[s].layers;
    if (layers.empty()) {
      out << subdomains_[s].size() << " parameters";
    } else {
      out << "layers " << layers.front() << "-" << layers.back();
    }
  }
  return out.str();
}

}  // namespace ddtrain
