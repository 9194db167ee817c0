// tbk/testing/process.hpp: what the conformance kit needs from the operating system: running
// a call that may crash in a child process, so that a crash becomes a failed check instead of the
// end of the test run, and reading the process's resident memory. Non-template; POSIX, with an
// in-process fallback elsewhere.
#pragma once

#include <tbk/detail/errors.hpp>  // tbk::detail::current_exception_text

#include <chrono>      // std::chrono::steady_clock
#include <cstdio>      // std::fflush, std::FILE
#include <cstring>     // strsignal
#include <fstream>     // std::ifstream
#include <functional>  // std::function
#include <string>      // std::string
#include <thread>      // std::this_thread::sleep_for

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#if defined(__unix__) || defined(__APPLE__)
#include <csignal>     // std::signal, SIGKILL
#include <sys/select.h>  // select
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, pipe, _exit
#define TBK_KIT_CAN_FORK 1
#else
#define TBK_KIT_CAN_FORK 0
#endif

namespace tbk::testing {

// How a call made by run_isolated ended.
struct isolated_outcome {
  enum kind { returned, threw, crashed, hung } how;
  std::string text;  // the exception's message, or how the child died

  std::string describe() const {
    switch (how) {
      case returned: return "returned without an error";
      case threw: return "threw: " + text;
      case crashed: return "crashed (" + text + ")";
      case hung: return "did not return within " + text;
    }
    return {};
  }
};

// Runs `call` in a child process where the system allows it, so a crash or a hang in it is
// reported instead of ending the test run. The child resets the crash signals doctest handles
// (doctest would report the crash as the parent's) and leaves with _exit, running no destructors.
inline isolated_outcome run_isolated(const std::function<void()>& call, int timeout_seconds = 60) {
  auto in_this_process = [&]() -> isolated_outcome {
    try {
      call();
      return {isolated_outcome::returned, {}};
    } catch (...) {
      return {isolated_outcome::threw, detail::current_exception_text()};
    }
  };
#if TBK_KIT_CAN_FORK
  int fds[2];
  if (pipe(fds) != 0) return in_this_process();
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t child = fork();
  if (child < 0) {
    close(fds[0]);
    close(fds[1]);
    return in_this_process();
  }
  if (child == 0) {
    for (int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGILL, SIGBUS}) std::signal(sig, SIG_DFL);
    close(fds[0]);
    const isolated_outcome outcome = in_this_process();
    const std::string message = std::string(1, static_cast<char>('0' + outcome.how)) + outcome.text;
    std::size_t written = 0;
    while (written < message.size()) {
      const ssize_t n = write(fds[1], message.data() + written, message.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  // Read everything the child says, then reap it; kill it when it takes too long.
  std::string message;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int status = 0;
  bool done = false;
  char buffer[4096];
  while (!done) {
    const pid_t reaped = waitpid(child, &status, WNOHANG);
    if (reaped == child) done = true;
    if (!done && std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      close(fds[0]);
      return {isolated_outcome::hung, std::to_string(timeout_seconds) + " s"};
    }
    // Drain the pipe so a long message cannot block the child.
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(fds[0], &readable);
    timeval wait_for{0, done ? 0 : 10000};
    while (select(fds[0] + 1, &readable, nullptr, nullptr, &wait_for) > 0) {
      const ssize_t n = read(fds[0], buffer, sizeof buffer);
      if (n <= 0) break;
      message.append(buffer, static_cast<std::size_t>(n));
      FD_ZERO(&readable);
      FD_SET(fds[0], &readable);
      wait_for = {0, 0};
    }
  }
  close(fds[0]);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return {isolated_outcome::crashed, "signal " + std::to_string(sig) + ", " + strsignal(sig)};
  }
  if (message.empty()) {
    return {isolated_outcome::crashed,
            "the process ended with status " + std::to_string(WEXITSTATUS(status)) +
                " before the call returned"};
  }
  return {static_cast<isolated_outcome::kind>(message[0] - '0'), message.substr(1)};
#else
  (void)timeout_seconds;
  return in_this_process();
#endif
}

// The process's resident memory in MB, or a negative number where it cannot be read. With
// glibc, free memory is handed back to the system first, so that what is measured is what is
// in use rather than what the allocator keeps.
inline double resident_megabytes() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return -1.0;
#if TBK_KIT_CAN_FORK
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e6;
#else
  return -1.0;
#endif
}

}  // namespace tbk::testing
