#pragma once
// A server the benchmark starts and stops: fork + exec with stdout and stderr in a log file,
// its CPU time read from /proc, SIGTERM then SIGKILL to stop it. Linux only.

#include "common/status.h"

#include <string>
#include <sys/types.h>
#include <vector>

namespace kvs::bench {

class ChildProcess {
public:
    // Starts argv[0] (a path) with the arguments; output goes to log_path.
    static Result<ChildProcess> Start(const std::vector<std::string>& argv,
                                      const std::string& log_path);

    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;
    ~ChildProcess();

    // Whether it is still running (false once it exited, with the reason in `why`).
    bool Running(std::string* why = nullptr);

    // User + system CPU seconds it has used so far (its threads included).
    double CpuSeconds() const;

    // Peak resident memory in MiB (VmHWM), 0 when unknown.
    double PeakRssMib() const;

    // SIGTERM, up to grace_s seconds, then SIGKILL; waits for it.
    void Stop(double grace_s = 10);

    pid_t pid() const { return pid_; }

    const std::string& log_path() const { return log_path_; }

private:
    ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

    pid_t pid_ = -1;
    std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (for servers without a port file).
Result<int> FreeLoopbackPort();

// The last `max_bytes` of a file (a server's log, for error messages).
std::string Tail(const std::string& path, std::size_t max_bytes = 2000);

}  // namespace kvs::bench
