// `ddtrain compare`: runs several solver configurations on one problem with the same seed,
// data and budget, then prints an aligned table and writes comparison.csv / comparison.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/reference/mat_file.hpp"
#include "progress.hpp"
#include "results.hpp"
#include "train_setup.hpp"

namespace ddtrain::cli {

namespace fs = std::filesystem;

namespace {

/// The small Allen-Cahn comparison run by `ddtrain compare` without arguments: equal time (36 s
/// each, 3 minutes in all; a time limit without --epochs runs until the limit) on the network
/// and constraints of examples/allen_cahn/accurate.ini with fewer points.
const std::vector<std::string> kDefaultArgs = {
    "--problem", "allen_cahn", "--solvers", "adam,lbfgs,plbfgs-additive,plbfgs-multiplicative,bfgs",
    "--model", "fc", "--depth", "3", "--width", "30", "--precision", "float64", "--ic-decay", "10",
    "--nf", "2000", "--rad-every", "300", "--time-limit", "36", "--metric-every", "50"};

struct Entry {
  std::string label;              ///< as given, e.g. "plbfgs-additive:subdomains=3"
  std::vector<std::string> args;  ///< --solver NAME [--key value ...]
};

/// "adam,plbfgs-additive:subdomains=3,local-steps=5": a token with '=' and no ':' continues
/// the previous entry's options.
std::vector<Entry> parse_entries(const std::string& list) {
  std::vector<Entry> entries;
  std::stringstream in(list);
  std::string token;
  while (std::getline(in, token, ',')) {
    // 'adam, lbfgs' (spaces after the commas) means the same as 'adam,lbfgs'.
    const size_t first = token.find_first_not_of(" \t"), last = token.find_last_not_of(" \t");
    token = first == std::string::npos ? std::string() : token.substr(first, last - first + 1);
    if (token.empty()) continue;
    const size_t colon = token.find(':');
    std::string options;
    if (colon == std::string::npos && token.find('=') != std::string::npos) {
      DDTRAIN_CHECK(!entries.empty(), InvalidArgument, "--solvers: option '", token, "' before any solver");
      entries.back().label += "," + token;
      options = token;
    } else {
      Entry e;
      e.label = token;
      std::string name = token.substr(0, colon);
      if (colon != std::string::npos) options = token.substr(colon + 1);
      std::string variant;
      for (const char* v : {"additive", "multiplicative"}) {
        const std::string suffix = std::string("-") + v;
        if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
          variant = v;
          name = name.substr(0, name.size() - suffix.size());
        }
      }
      e.args = {"--solver", name};
      if (!variant.empty()) e.args.insert(e.args.end(), {"--variant", variant});
      entries.push_back(e);
    }
    std::stringstream kv_list(options);
    std::string kv;
    while (std::getline(kv_list, kv, ',')) {
      const size_t eq = kv.find('=');
      DDTRAIN_CHECK(eq != std::string::npos && eq > 0, InvalidArgument, "--solvers: '", kv,
                    "' is not key=value (e.g. plbfgs-additive:subdomains=3,local-steps=5)");
      entries.back().args.push_back("--" + kv.substr(0, eq));
      entries.back().args.push_back(kv.substr(eq + 1));
    }
  }
  DDTRAIN_CHECK(!entries.empty(), InvalidArgument, "--solvers is empty");
  return entries;
}

/// The options of one entry's run: the common ones, then the entry's solver and its options.
std::vector<std::string> common_with_solver(const std::vector<std::string>& common, const Entry& entry) {
  std::vector<std::string> args = common;
  args.insert(args.end(), entry.args.begin(), entry.args.end());
  return args;
}

std::string directory_name(const std::string& label, size_t index) {
  std::string name = std::to_string(index + 1) + "-";
  for (char c : label) name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return name;
}

std::string fmt(const nlohmann::json& v, const char* format = "%.4g") {
  if (v.is_null()) return "-";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), format, v.get<double>());
    return buffer;
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string aligned() const {
    std::vector<size_t> width(header.size());
    for (size_t c = 0; c < header.size(); ++c) {
      width[c] = header[c].size();
      for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
    }
    std::ostringstream out;
    auto line = [&](const std::vector<std::string>& cells) {
      for (size_t c = 0; c < cells.size(); ++c) {
        out << (c ? "  " : "") << cells[c] << std::string(width[c] - cells[c].size(), ' ');
      }
      out << "\n";
    };
    line(header);
    for (const auto& r : rows) line(r);
    return out.str();
  }
  std::string markdown() const {
    std::ostringstream out;
    out << "|";
    for (const auto& h : header) out << " " << h << " |";
    out << "\n|";
    for (size_t c = 0; c < header.size(); ++c) out << "---|";
    out << "\n";
    for (const auto& r : rows) {
      out << "|";
      for (const auto& cell : r) out << " " << cell << " |";
      out << "\n";
    }
    return out.str();
  }
};

/// comparison.csv: one record per run, numbers as numbers (shortest form that reads back to
/// the same double), an empty cell where a value is missing (not reached, no metric).
std::string comparison_csv(const std::vector<nlohmann::ordered_json>& records) {
  std::ostringstream out;
  bool first = true;
  for (const auto& [key, value] : records.front().items()) {
    out << (first ? "" : ",") << key;
    first = false;
  }
  out << "\n";
  for (const auto& record : records) {
    first = true;
    for (const auto& [key, value] : record.items()) {
      std::string cell = value.is_null() ? "" : value.is_string() ? value.get<std::string>() : value.dump();
      if (cell.find_first_of(",\"") != std::string::npos) {  // RFC 4180 quoting
        std::string quoted = "\"";
        for (char c : cell) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        cell = quoted + "\"";
      }
      out << (first ? "" : ",") << cell;
      first = false;
    }
    out << "\n";
  }
  return out.str();
}

/// The speed-up of `time` over the first run's `first` (first / time): null unless both are
/// finite and positive.
nlohmann::json speed_up(double first, double time) {
  return std::isfinite(first) && std::isfinite(time) && first > 0 && time > 0 ? nlohmann::json(first / time)
                                                                           : nlohmann::json(nullptr);
}

double number_or_nan(const nlohmann::json& v) { return v.is_number() ? v.get<double>() : kNaN; }

/// Without --problem and --solvers: the default comparison, with the given options (e.g.
/// --out, --overwrite, --epochs) taking the place of the defaults they name.
std::vector<std::string> with_defaults(const std::vector<std::string>& given) {
  auto has = [&](const std::string& key) { return std::find(given.begin(), given.end(), key) != given.end(); };
  if (has("--problem") || has("--solvers")) return given;
  std::vector<std::string> args = given;
  for (size_t i = 0; i + 1 < kDefaultArgs.size(); i += 2) {
    if (!has(kDefaultArgs[i])) args.insert(args.end(), {kDefaultArgs[i], kDefaultArgs[i + 1]});
  }
  return args;
}

}  // namespace

int run_compare(const std::vector<std::string>& given) {
  std::vector<std::string> args = with_defaults(given);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << "Usage: ddtrain compare --problem NAME --solvers S1,S2[:key=value,...],... --out DIR [train options]\n"
                   "  Runs every solver entry on the same problem, seed, data and budget (--epochs,\n"
                   "  --time-limit, --target), one sub-directory per run, then prints a table and writes\n"
                   "  DIR/comparison.csv and DIR/comparison.md. plbfgs-additive / plbfgs-multiplicative\n"
                   "  are short for plbfgs --variant ... . Without --problem and --solvers: a small Allen-Cahn comparison\n"
                   "  (adam, lbfgs, plbfgs additive and multiplicative, bfgs; 36 s each) into ./ddtrain-compare.\n"
                   "  Every option of `ddtrain train --help` applies to all runs. The plots of `ddtrain plot`\n"
                   "  go to DIR/plots unless --no-plot. --log-format jsonl: one JSON object per line on\n"
                   "  stdout (each run's progress and summary, then the table), nothing else.\n\n"
                   "comparison.csv columns: run, ranks, iterations, epochs, evaluations, local_evaluations,\n"
                   "  train_time_s (training; metric evaluations and checkpoints excluded), elapsed_s (the\n"
                   "  whole run), final_loss, metric_name, metric, termination, time_to_target_s (empty: not\n"
                   "  reached), speed_up. Numbers only in numeric columns; empty where there is none.\n"
                   "speed_up: relative to the FIRST entry of --solvers, first / this (> 1: this run is faster):\n"
                   "  with --target, of time_to_target_s (empty unless both reached the target); without,\n"
                   "  of train_time_s (the same --epochs done faster; under --time-limit all are about 1).\n";
      return kExitOk;
    }
  }
  // Pull out --solvers and --out; everything else goes to every run.
  std::string solvers, out = "ddtrain-compare";
  bool overwrite = false, plot = true;
  std::vector<std::string> common;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--no-plot") {
      plot = false;
    } else if (args[i] == "--solvers" || args[i] == "--out") {
      DDTRAIN_CHECK(i + 1 < args.size(), InvalidArgument, args[i], " needs a value");
      (args[i] == "--solvers" ? solvers : out) = args[i + 1];
      ++i;
    } else if (args[i] == "--solver") {
      throw InvalidArgument("ddtrain compare takes --solvers (a list), not --solver");
    } else {
      if (args[i] == "--overwrite") {
        overwrite = true;  // every run directory is (re)written anyway
      } else {
        common.push_back(args[i]);
      }
    }
  }
  DDTRAIN_CHECK(!solvers.empty(), InvalidArgument, "ddtrain compare needs --solvers, e.g. --solvers adam,lbfgs");
  const std::vector<Entry> entries = parse_entries(solvers);
  // Every entry's options are checked before any run starts: a typo in the last entry must not
  // cost the minutes of the first ones.
  for (const Entry& entry : entries) {
    try {
      make_solver(parse_train_setup(common_with_solver(common, entry)));
    } catch (const std::exception& e) {
      throw InvalidArgument("--solvers entry '" + entry.label + "': " + e.what());
    }
  }
  // Files that every run reads are checked here too (a NaN in a reference would otherwise
  // show at the first metric evaluation, with the comparison directory already made).
  const TrainSetup first_setup = parse_train_setup(common_with_solver(common, entries.front()));
  if (first_setup.vm.count("reference"))
    reference::read_reference_mat(first_setup.vm["reference"].as<std::string>());
  const bool jsonl = first_setup.log_format == LogFormat::kJsonl;
  const bool by_target = first_setup.train.target.has_value();
  const bool rank0 = !launched_under_mpi() || std::getenv("OMPI_COMM_WORLD_RANK") == nullptr ||
                     std::string(std::getenv("OMPI_COMM_WORLD_RANK")) == "0";
  if (rank0) prepare_results_directory(out, overwrite);

  Table table;  // for people: the terminal and comparison.md
  table.header = {"run", "ranks", "iterations", "epochs", "grad evals", "local evals", "wall s",
                  "final loss", "metric", "termination", "time to target s", "speed-up"};
  std::vector<nlohmann::ordered_json> records;  // for tools: comparison.csv, jsonl
  double first_time = kNaN;
  int worst = kExitOk;
  for (size_t k = 0; k < entries.size(); ++k) {
    std::vector<std::string> run_args = common;
    run_args.insert(run_args.end(), entries[k].args.begin(), entries[k].args.end());
    const std::string dir = (fs::path(out) / directory_name(entries[k].label, k)).string();
    run_args.insert(run_args.end(), {"--out", dir, "--overwrite"});
    if (rank0 && jsonl) {
      print_json_line(event_object("start", entries[k].label, {{"index", k + 1}, {"of", entries.size()}}));
    } else if (rank0) {
      std::printf("[%zu/%zu] %s\n", k + 1, entries.size(), entries[k].label.c_str());
    }
    std::fflush(stdout);
    int status = kExitOk;
    const nlohmann::json s = train_once(run_args, status, false, entries[k].label);
    worst = std::max(worst, status);
    const double time = number_or_nan(s[by_target ? "time_to_target_s" : "train_time_s"]);
    if (k == 0) first_time = time;
    nlohmann::ordered_json record;
    record["run"] = entries[k].label;
    for (const char* key : {"ranks", "iterations", "epochs", "evaluations", "local_evaluations", "train_time_s",
                            "elapsed_s", "final_loss", "metric_name", "metric", "termination", "time_to_target_s"})
      record[key] = nlohmann::ordered_json(s[key]);
    record["speed_up"] = nlohmann::ordered_json(speed_up(first_time, time));
    records.push_back(record);
    table.rows.push_back({entries[k].label, fmt(s["ranks"]), fmt(s["iterations"]), fmt(s["epochs"]),
                          fmt(s["evaluations"]), fmt(s["local_evaluations"]), fmt(s["train_time_s"], "%.2f"),
                          fmt(s["final_loss"]), s["metric_name"].get<std::string>() + " " + fmt(s["metric"]),
                          s["termination"].get<std::string>(),
                          s["time_to_target_s"].is_null() ? "not reached" : fmt(s["time_to_target_s"], "%.2f"),
                          fmt(speed_up(first_time, time), "%.2f")});
  }
  if (rank0) {
    const std::string csv = (fs::path(out) / "comparison.csv").string(), md = (fs::path(out) / "comparison.md").string();
    write_file_atomically(csv, comparison_csv(records));
    write_file_atomically(md, table.markdown());
    if (jsonl) {
      nlohmann::ordered_json event = event_object("comparison", "");
      event["out"] = out;
      event["files"] = nlohmann::ordered_json::array({csv, md});
      event["runs"] = records;
      print_json_line(event);
    } else {
      std::printf("\n%s\n", table.aligned().c_str());
      std::printf("written: %s, %s\n", csv.c_str(), md.c_str());
    }
    // jsonl: stdout holds only JSON; what plotting says goes to stderr.
    FILE* notes = jsonl ? stderr : stdout;
    if (plot && plotting_available()) {
      if (render_plots(out, "png", jsonl) != kExitOk) std::fprintf(notes, "note: the plots could not be rendered\n");
    } else if (plot) {
      std::fprintf(notes, "note: no plots (they need python3 with matplotlib: apt-get install python3-matplotlib)\n");
    }
  }
  return worst;
}

}  // namespace ddtrain::cli
