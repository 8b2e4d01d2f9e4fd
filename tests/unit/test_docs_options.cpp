// Docs that are true: every `--option` that README.md, docs/*.md and examples/*/README.md name
// for ddtrain is accepted by the CLI. Options are taken from code lines and code spans that
// invoke ddtrain (only the words after `ddtrain`, so mpirun's own options are not), and from
// code spans that are an option alone (`--hidden`) unless the nearest command before them in
// their paragraph (or table row) is another tool (mpirun, cmake, ctest, ...). A command that
// names its problem and solver must use options of that problem and solver.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "cli_helpers.hpp"

using namespace ddtrain::test;

namespace {

using Options = std::set<std::string>;

/// The option names (without "--") in a help text: option lines, and for prose help
/// (compare, plot) every --word in it.
Options options_in_help(const std::string& text, bool prose) {
  Options out;
  const std::regex option_line(R"(^\s+(?:-\w \[ )?--([a-zA-Z0-9][a-zA-Z0-9-]*))");
  const std::regex any_option(R"(--([a-zA-Z0-9][a-zA-Z0-9-]*))");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, option_line)) out.insert(m[1]);
    if (prose)
      for (auto it = std::sregex_iterator(line.begin(), line.end(), any_option); it != std::sregex_iterator(); ++it)
        out.insert((*it)[1]);
  }
  return out;
}

std::vector<std::string> split_names(const std::string& help, const std::string& label) {
  const size_t at = help.find(label);
  std::vector<std::string> names;
  if (at == std::string::npos) return names;
  std::istringstream list(help.substr(at + label.size(), help.find('\n', at) - at - label.size()));
  for (std::string name; std::getline(list, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

/// What the CLI accepts, asked from its --help texts.
class Accepted {
 public:
  Accepted() {
    const std::string help = run_cli("train --help").out;
    problems_ = split_names(help, "Problems:");
    solvers_ = split_names(help, "Solvers:");
    train_ = options_in_help(help, false);
    compare_own_ = options_in_help(run_cli("compare --help").out, true);
    compare_ = train_;
    compare_.insert(compare_own_.begin(), compare_own_.end());
    reference_ = options_in_help(run_cli("reference --help").out, false);
    plot_ = options_in_help(run_cli("plot --help").out, true);
    plot_.insert("help");
    top_ = {"help", "version"};
    all_ = train_;
    for (const Options* set : {&compare_, &reference_, &plot_, &top_}) all_.insert(set->begin(), set->end());
  }
  const std::vector<std::string>& problems() const { return problems_; }
  const std::vector<std::string>& solvers() const { return solvers_; }
  /// The options of `ddtrain train --problem P --solver S`.
  const Options& train(const std::string& problem, const std::string& solver) {
    const std::string key = problem + " " + solver;
    auto it = combinations_.find(key);
    if (it == combinations_.end())
      it = combinations_.emplace(key, options_in_help(run_cli("train --problem " + problem + " --solver " + solver +
                                                              " --help").out, false)).first;
    return it->second;
  }
  const Options& train() const { return train_; }
  /// What a span that names an option alone may name in a document about `problems` (all
  /// problems if empty): any solver's options, those problems' options, and the other
  /// commands' options.
  Options for_problems(const std::set<std::string>& problems) {
    if (problems.empty()) return all_;
    Options out = compare_own_;
    for (const Options* set : {&reference_, &plot_, &top_}) out.insert(set->begin(), set->end());
    // Each solver's options come with the first problem's; the other problems' with L-BFGS.
    for (const auto& solver : solvers_) {
      const Options& o = train(*problems.begin(), solver);
      out.insert(o.begin(), o.end());
    }
    for (const auto& problem : problems) {
      const Options& o = train(problem, "lbfgs");
      out.insert(o.begin(), o.end());
    }
    return out;
  }
  const Options& compare() const { return compare_; }
  const Options& reference() const { return reference_; }
  const Options& plot() const { return plot_; }
  const Options& all() const { return all_; }

 private:
  std::vector<std::string> problems_, solvers_;
  Options train_, compare_own_, compare_, reference_, plot_, top_, all_;
  std::map<std::string, Options> combinations_;
};

struct Mention {
  std::string file;
  int line = 0;
  std::string text;  ///< the command or span
  std::string option;
};

/// The value after `--name` in a command's words ("" if absent).
std::string value_of(const std::vector<std::string>& words, const std::string& name) {
  for (size_t i = 0; i + 1 < words.size(); ++i)
    if (words[i] == name) return words[i + 1];
  return "";
}

std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

/// Checks one ddtrain invocation (the text from "ddtrain" on); returns the options it refuses.
std::vector<std::string> refused(Accepted& accepted, const std::string& command) {
  static const std::regex option(R"((?:^|[\s`(\[])--([a-zA-Z0-9][a-zA-Z0-9-]*))");
  const std::vector<std::string> words = words_of(command);
  const std::string sub = words.size() > 1 ? words[1] : "";
  const Options* allowed = &accepted.all();
  if (sub == "train") {
    const std::string problem = value_of(words, "--problem"), solver = value_of(words, "--solver");
    auto known = [](const std::vector<std::string>& names, const std::string& name) {
      return std::find(names.begin(), names.end(), name) != names.end();
    };
    allowed = known(accepted.problems(), problem) && known(accepted.solvers(), solver)
                  ? &accepted.train(problem, solver)
                  : &accepted.train();
  } else if (sub == "compare") {
    allowed = &accepted.compare();
  } else if (sub == "reference") {
    allowed = &accepted.reference();
  } else if (sub == "plot") {
    allowed = &accepted.plot();
  }
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(command.begin(), command.end(), option); it != std::sregex_iterator(); ++it)
    if (!allowed->count((*it)[1])) out.push_back((*it)[1]);
  return out;
}

/// The part of `text` from a `ddtrain` command word on ("" if none): "build/ddtrain train ...",
/// "ddtrain compare ...", not "ddtrain_unit_tests" or "include/ddtrain/".
std::string ddtrain_command(const std::string& text) {
  static const std::regex command(
      R"((?:^|[\s/`(])ddtrain(?=\s+(?:train|compare|reference|plot|-h|--help|--version)(?:\s|$)|\s*$))");
  std::smatch m;
  if (!std::regex_search(text, m, command)) return "";
  return text.substr(m.position(0) + m.length(0) - 7);
}

/// The last command word in `text`: "ddtrain", another tool's name, or "".
std::string last_tool(const std::string& text) {
  static const std::regex tool(
      R"((?:^|[^\w/.-])(?:[\w./-]*/)?(ddtrain|mpirun|mpiexec|srun|cmake|ctest|apt-get|pip3?|python3?|[\w-]+\.py|[\w-]+\.sh)(?=[\s`]|$))");
  std::string last;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), tool); it != std::sregex_iterator(); ++it) last = (*it)[1];
  return last;
}

std::vector<fs::path> documents() {
  const fs::path root = DDTRAIN_SOURCE_DIR;
  std::vector<fs::path> files = {root / "README.md"};
  for (const auto& e : fs::directory_iterator(root / "docs"))
    if (e.path().extension() == ".md") files.push_back(e.path());
  for (const auto& e : fs::directory_iterator(root / "examples"))
    if (fs::exists(e.path() / "README.md")) files.push_back(e.path() / "README.md");
  std::sort(files.begin(), files.end());
  return files;
}

/// Every option a document names for ddtrain that the CLI refuses.
std::vector<Mention> wrong_options(Accepted& accepted, const fs::path& file) {
  std::vector<Mention> wrong;
  std::vector<std::string> lines;
  {
    std::istringstream in(slurp(file));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  const std::string name = fs::relative(file, DDTRAIN_SOURCE_DIR).string();
  // The problems the document's commands name: its bare option spans are about them.
  std::set<std::string> problems;
  {
    const std::string text = slurp(file);
    const std::regex problem(R"(--problem[ =]([a-z0-9_]+))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), problem); it != std::sregex_iterator(); ++it)
      if (std::count(accepted.problems().begin(), accepted.problems().end(), (*it)[1].str())) problems.insert((*it)[1]);
  }
  const Options bare_allowed = accepted.for_problems(problems);
  auto report = [&](int line, const std::string& text, const std::vector<std::string>& options) {
    for (const auto& o : options) wrong.push_back({name, line, text, o});
  };
  bool in_code = false;
  std::string paragraph;  // prose since the last blank line (context of bare option spans)
  std::string code;       // the code block this paragraph follows, if it follows one
  std::string block;      // the code block being read
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t indent = line.find_first_not_of(' ');
    if (indent != std::string::npos && line.compare(indent, 3, "```") == 0) {
      in_code = !in_code;
      if (in_code) block.clear();
      else code = block, paragraph.clear();
      continue;
    }
    if (in_code) {
      // A command continued with '\' is one line.
      std::string joined = line;
      const size_t first = i;
      while (!joined.empty() && joined.back() == '\\' && i + 1 < lines.size()) joined.pop_back(), joined += " " + lines[++i];
      block += joined + "\n";
      if (joined.find_first_not_of(' ') != std::string::npos && joined[joined.find_first_not_of(' ')] == '#') continue;
      const std::string command = ddtrain_command(joined);
      if (!command.empty()) report(static_cast<int>(first) + 1, joined, refused(accepted, command));
      continue;
    }
    if (indent == std::string::npos) {
      if (!paragraph.empty()) code.clear();
      paragraph.clear();
      continue;
    }
    const bool table_row = line[indent] == '|';
    std::string context = table_row ? std::string() : code + " " + paragraph;
    // Code spans of this line.
    size_t at = 0;
    while ((at = line.find('`', at)) != std::string::npos) {
      const size_t end = line.find('`', at + 1);
      if (end == std::string::npos) break;
      const std::string span = line.substr(at + 1, end - at - 1);
      const std::string command = ddtrain_command(span);
      if (!command.empty()) {
        report(static_cast<int>(i) + 1, span, refused(accepted, command));
      } else if (span.rfind("--", 0) == 0 && span.size() > 2 && std::isalnum(static_cast<unsigned char>(span[2]))) {
        const std::string before = context + " " + line.substr(0, at);
        const std::string tool = last_tool(before);
        if (tool.empty() || tool == "ddtrain") {
          const std::string option = span.substr(2, span.find_first_of(" =", 2) - 2);
          if (!bare_allowed.count(option)) report(static_cast<int>(i) + 1, span, {option});
        }
      }
      at = end + 1;
    }
    if (!table_row) paragraph += " " + line;
  }
  return wrong;
}

}  // namespace

TEST(DocsOptions, EveryOptionTheDocsNameIsAcceptedByTheCli) {
  Accepted accepted;
  ASSERT_GE(accepted.problems().size(), 3u);
  ASSERT_GE(accepted.solvers().size(), 3u);
  ASSERT_TRUE(accepted.train().count("epochs"));
  ASSERT_TRUE(accepted.all().count("hidden"));
  const auto files = documents();
  ASSERT_GE(files.size(), 5u);
  std::string failures;
  for (const auto& file : files)
    for (const Mention& m : wrong_options(accepted, file))
      failures += m.file + ":" + std::to_string(m.line) + ": --" + m.option + " in: " + m.text + "\n";
  EXPECT_TRUE(failures.empty()) << "options the CLI does not accept:\n" << failures;
}

TEST(DocsOptions, TheCheckFindsWrongOptionsAndSkipsOtherTools) {
  Accepted accepted;
  const fs::path dir = scratch("docs_options");
  std::ofstream(dir / "doc.md") << "Models: `--model ffnn` (2 layers, `--width`, `--hidden`).\n\n"
                                   "```sh\nmpirun -np 4 --oversubscribe build/ddtrain train --problem fashion_mnist "
                                   "--solver adam --beta1 0.8 \\\n    --radius 0.1\ncmake --build build --target docs\n```\n\n"
                                   "As root, `mpirun` needs `--allow-run-as-root`; `ddtrain plot DIR --format svg`.\n\n"
                                   "`ddtrain train --problem fashion_mnist --hidden 64` and `--train-subset`.\n\n"
                                   "```sh\npython3 examples/python/script.py --chunk 4\n```\n\nOptions: `--chunk`, `--dtype`.\n\n"
                                   "```sh\ncmake --install build --prefix /opt/ddtrain   # or leave out --prefix\n```\n";
  std::set<std::string> found;
  for (const Mention& m : wrong_options(accepted, dir / "doc.md")) found.insert(m.option);
  // The document is about fashion_mnist (its commands say so): --width is no option of it.
  // --radius belongs to tr/sapts/apts, not to adam (the command names its solver).
  // mpirun's and cmake's own options are not ddtrain's.
  EXPECT_EQ(found, (std::set<std::string>{"radius", "width"}));
}
