#pragma once
// Runs a helper program (iptables) from an argv, never through a shell, and collects its exit
// status and output. For the few jobs that have no library here (there is no libiptc package).
#include <string>
#include <vector>

namespace kohaku {

struct ProgramResult {
  int status = 0;  // exit status; 127 when the program could not be run, 128+N on signal N
  std::string out, err;
};

// argv[0] is looked up in PATH. Blocks until the program exits.
ProgramResult spawn_program(const std::vector<std::string>& argv);

// "a b c": for messages and logs.
std::string join_args(const std::vector<std::string>& argv);
// Without trailing newlines and spaces.
std::string trim_trailing(std::string s);
// Whitespace-separated words of one line (iptables -S output).
std::vector<std::string> split_words(const std::string& line);

}  // namespace kohaku
