#include "bench/child_process.h"

#include "common/fd.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>  // sigdescr_np
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kvs::bench {
namespace {

// "Terminated" for SIGTERM (sigdescr_np: strsignal without its static buffer).
std::string SignalName(int sig) {
    const char* name = sigdescr_np(sig);
    return name != nullptr ? name : "signal " + std::to_string(sig);
}

}  // namespace

Result<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                         const std::string& log_path) {
    if (argv.empty() || access(argv[0].c_str(), X_OK) != 0) {
        return NotFound("cannot run " + (argv.empty() ? std::string("nothing") : argv[0]));
    }
    const UniqueFd log = OpenFd(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!log.valid()) {
        return InvalidArgument("cannot write " + log_path + ": " + ErrnoText(errno));
    }
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) {
        return Internal("fork: " + ErrnoText(errno));
    }
    if (pid == 0) {                        // the child: only async-signal-safe calls until exec
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // a benchmark that dies takes its servers along
        dup2(log.get(), STDOUT_FILENO);
        dup2(log.get(), STDERR_FILENO);
        const int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, STDIN_FILENO);
        execv(args[0], args.data());
        _exit(127);
    }
    return ChildProcess(pid, log_path);  // the parent's copy of `log` closes here
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), log_path_(std::move(other.log_path_)) {
    other.pid_ = -1;
}

ChildProcess::~ChildProcess() {
    Stop(2);
}

bool ChildProcess::Running(std::string* why) {
    if (pid_ < 0) {
        return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == 0) {
        return true;
    }
    if (why != nullptr) {
        *why = WIFEXITED(status)     ? "exited with status " + std::to_string(WEXITSTATUS(status))
               : WIFSIGNALED(status) ? "killed by signal " + SignalName(WTERMSIG(status))
                                     : "stopped";
    }
    pid_ = -1;
    return false;
}

double ChildProcess::CpuSeconds() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::size_t close_paren = text.rfind(')');
    if (close_paren == std::string::npos) {
        return 0;
    }
    std::istringstream in(text.substr(close_paren + 2));
    std::string field;
    double utime = 0;
    double stime = 0;
    for (int i = 3; in >> field; ++i) {  // field 3 is the state; 14 and 15 are utime and stime
        if (i == 14) {
            utime = std::stod(field);
        } else if (i == 15) {
            stime = std::stod(field);
            break;
        }
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ChildProcess::PeakRssMib() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(f, line);) {
        if (line.starts_with("VmHWM:")) {
            return std::stod(line.substr(6)) / 1024.0;  // kB
        }
    }
    return 0;
}

void ChildProcess::Stop(double grace_s) {
    if (pid_ < 0) {
        return;
    }
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

Result<int> FreeLoopbackPort() {
    const UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return Internal("socket: " + ErrnoText(errno));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    const bool ok = bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    if (!ok) {
        return Internal("no free port: " + ErrnoText(errno));
    }
    return static_cast<int>(ntohs(addr.sin_port));
}

std::string Tail(const std::string& path, std::size_t max_bytes) {
    std::ifstream f(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return text.size() > max_bytes ? "..." + text.substr(text.size() - max_bytes) : text;
}

}  // namespace kvs::bench
