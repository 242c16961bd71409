#include "session/park_store.h"

#include "common/check.h"
#include "common/file_io.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <sys/file.h>
#include <system_error>
#include <type_traits>
#include <unistd.h>
#include <utility>

// POSIX (open/write/fsync/flock) is used only here: the standard library cannot fsync or lock.

namespace kvs {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "spill files assume a little-endian host");

constexpr std::string_view kMagic = "KVSPARK1";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 40;
constexpr const char* kLockName = ".park.lock";

// ---- XXH64 (the reference algorithm, seed 0) ----

constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kP5 = 0x27D4EB2F165667C5ULL;

std::uint64_t Load64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

std::uint64_t Round(std::uint64_t acc, std::uint64_t input) {
    return std::rotl(acc + input * kP2, 31) * kP1;
}

std::uint64_t Merge(std::uint64_t h, std::uint64_t v) {
    return (h ^ Round(0, v)) * kP1 + kP4;
}

std::uint64_t Xxh64(const std::uint8_t* p, std::size_t n) {
    const std::uint8_t* const end = p + n;
    std::uint64_t h = kP5;
    if (n >= 32) {
        std::array<std::uint64_t, 4> v = {kP1 + kP2, kP2, 0, 0 - kP1};
        for (; end - p >= 32; p += 32) {
            for (std::size_t i = 0; i < 4; ++i) {
                v[i] = Round(v[i], Load64(p + 8 * i));
            }
        }
        h = std::rotl(v[0], 1) + std::rotl(v[1], 7) + std::rotl(v[2], 12) + std::rotl(v[3], 18);
        for (const std::uint64_t lane : v) {
            h = Merge(h, lane);
        }
    }
    h += n;
    for (; end - p >= 8; p += 8) {
        h = std::rotl(h ^ Round(0, Load64(p)), 27) * kP1 + kP4;
    }
    if (end - p >= 4) {
        std::uint32_t w = 0;
        std::memcpy(&w, p, sizeof(w));
        h = std::rotl(h ^ (w * kP1), 23) * kP2 + kP3;
        p += 4;
    }
    for (; p < end; ++p) {
        h = std::rotl(h ^ (*p * kP5), 11) * kP1;
    }
    h = (h ^ (h >> 33)) * kP2;
    h = (h ^ (h >> 29)) * kP3;
    return h ^ (h >> 32);
}

// ---- File helpers ----

std::string ErrnoText(int err) {
    return std::generic_category().message(err);
}

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}

    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int Get() const { return fd_; }

    int Release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

// Calls `io` (::read or ::write) until `n` bytes moved: 0, or errno (EIO at an early end of file).
template <typename Byte, typename Io>
int MoveAll(Io io, int fd, Byte* p, std::size_t n) {
    while (n > 0) {
        const ssize_t r = io(fd, p, std::min<std::size_t>(n, 1U << 30));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return r < 0 ? errno : EIO;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return 0;
}

// The 40-byte header, stored as is (the host is little-endian; no padding).
struct SpillHeader {
    std::array<char, 8> magic{};
    std::uint32_t version = 0;
    std::uint32_t header_bytes = 0;
    std::uint64_t id = 0;
    std::uint64_t n_bytes = 0;
    std::uint64_t checksum = 0;
};

static_assert(sizeof(SpillHeader) == kHeaderBytes && std::is_trivially_copyable_v<SpillHeader>);

// Writes the header and payload atomically (common/file_io.h: tmp, fsync, rename, folder sync).
Status WriteSpillFile(const fs::path& path, SessionId id, std::span<const std::uint8_t> payload) {
    SpillHeader h{{}, kVersion, kHeaderBytes, id, payload.size(), ParkChecksum(payload)};
    std::memcpy(h.magic.data(), kMagic.data(), kMagic.size());
    const auto* head = reinterpret_cast<const std::uint8_t*>(&h);
    const Status st = WriteFileAtomic(path, {std::span(head, sizeof(h)), payload});
    return st.ok() ? st : Status(StatusCode::kStorage, "spill file: " + st.message());
}

// What is wrong with a header, or "" when it matches `id` and `n_bytes`.
std::string CheckHeader(const SpillHeader& h, SessionId id, std::size_t n_bytes) {
    if (std::string_view(h.magic.data(), h.magic.size()) != kMagic) {
        return "has no KVSPARK1 magic";
    }
    if (h.version != kVersion || h.header_bytes != kHeaderBytes) {
        return "has format version " + std::to_string(h.version) + ", expected 1";
    }
    if (h.id != id || h.n_bytes != n_bytes) {
        return "holds session " + std::to_string(h.id) + " with " + std::to_string(h.n_bytes) +
               " bytes, expected session " + std::to_string(id) + " with " +
               std::to_string(n_bytes);
    }
    return "";
}

// Reads and verifies the spill file of `id`, which must hold `n_bytes` of payload.
Result<std::vector<std::uint8_t>> ReadSpillFile(const fs::path& path,
                                                SessionId id,
                                                std::size_t n_bytes) {
    const std::string lost = "parked state of session " + std::to_string(id) + " is lost: ";
    std::error_code ec;
    const std::uintmax_t have = fs::file_size(path, ec);
    Fd fd(ec ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.Get() < 0) {
        return Status(StatusCode::kStorage, lost + "cannot open " + path.string() + ": " +
                                                (ec ? ec.message() : ErrnoText(errno)));
    }
    const std::uintmax_t want = kHeaderBytes + n_bytes;
    if (have != want) {
        return Internal(lost + path.string() + (have < want ? " is truncated" : " is too long") +
                        " (" + std::to_string(have) + " bytes, expected " + std::to_string(want) +
                        ")");
    }
    SpillHeader header;
    std::vector<std::uint8_t> payload(n_bytes);
    int err = MoveAll(::read, fd.Get(), reinterpret_cast<std::uint8_t*>(&header), sizeof(header));
    if (err == 0) {
        err = MoveAll(::read, fd.Get(), payload.data(), n_bytes);
    }
    if (err != 0) {
        return Status(StatusCode::kStorage,
                      lost + "cannot read " + path.string() + ": " + ErrnoText(err));
    }
    if (const std::string bad = CheckHeader(header, id, n_bytes); !bad.empty()) {
        return Internal(lost + path.string() + " " + bad);
    }
    if (ParkChecksum(payload) != header.checksum) {
        return Internal(lost + path.string() + " fails its checksum (corrupted payload)");
    }
    return payload;
}

// `<digits>.park` or `<digits>.park.tmp`: the names a ParkStore writes.
bool IsSpillFileName(const std::string& name) {
    const std::size_t dot = name.find('.');
    if (dot == 0 || dot == std::string::npos) {
        return false;
    }
    const bool digits = std::all_of(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(dot),
                                    [](char c) { return c >= '0' && c <= '9'; });
    const std::string_view rest = std::string_view(name).substr(dot);
    return digits && (rest == ".park" || rest == ".park.tmp");
}

void RemoveSpillFiles(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (IsSpillFileName(entry.path().filename().string())) {
            doomed.push_back(entry.path());
        }
    }
    for (const fs::path& path : doomed) {
        fs::remove(path, ec);
    }
}

// An fd holding an exclusive flock on the folder's lock file.
Result<int> LockFolder(const fs::path& dir) {
    const fs::path path = dir / kLockName;
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.Get() < 0) {
        return Status(StatusCode::kStorage,
                      "cannot create " + path.string() + ": " + ErrnoText(errno));
    }
    if (::flock(fd.Get(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            return Status(StatusCode::kUnavailable,
                          "spill_dir " + dir.string() + " is in use by another ParkStore");
        }
        return Status(StatusCode::kStorage,
                      "spill_dir " + dir.string() + " cannot be locked: " + ErrnoText(err));
    }
    return fd.Release();
}

}  // namespace

std::uint64_t ParkChecksum(std::span<const std::uint8_t> bytes) {
    return Xxh64(bytes.data(), bytes.size());
}

// ---- Lifetime ----

Result<std::unique_ptr<ParkStore>> ParkStore::Create(ParkStoreOptions options) {
    if (options.spill_dir.empty()) {
        return std::unique_ptr<ParkStore>(new ParkStore(std::move(options), -1, false));
    }
    const fs::path dir = options.spill_dir;
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
        return InvalidArgument("spill_dir " + dir.string() + " is not a folder");
    }
    const bool created = fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir, ec)) {
        return Status(StatusCode::kStorage, "cannot create spill_dir " + dir.string() + ": " +
                                                (ec ? ec.message() : "it is not a folder"));
    }
    Result<int> lock_fd = LockFolder(dir);
    if (!lock_fd.ok()) {
        return lock_fd.status();
    }
    RemoveSpillFiles(dir);  // left by a store that died; the lock says none is alive
    return std::unique_ptr<ParkStore>(new ParkStore(std::move(options), *lock_fd, created));
}

ParkStore::ParkStore(ParkStoreOptions options, int lock_fd, bool created_dir)
    : options_(std::move(options)), lock_fd_(lock_fd), created_dir_(created_dir) {}

ParkStore::~ParkStore() {
    if (lock_fd_ < 0) {
        return;
    }
    const fs::path dir = options_.spill_dir;
    RemoveSpillFiles(dir);
    std::error_code ec;
    fs::remove(dir / kLockName, ec);
    ::close(lock_fd_);
    if (created_dir_) {
        fs::remove(dir, ec);  // fails, harmlessly, when something else is in it
    }
}

// ---- Put ----

Status ParkStore::NoRoom(SessionId id, std::size_t n_bytes, const char* why) const {
    return {StatusCode::kResourceExhausted, "cannot park session " + std::to_string(id) + ": its " +
                                                std::to_string(n_bytes) + " bytes " + why + " of " +
                                                std::to_string(options_.host_budget_bytes) +
                                                " bytes and there is no spill_dir"};
}

Status ParkStore::Put(SessionId id, std::vector<std::uint8_t>&& blob) {
    Status status =
        blob.size() > options_.host_budget_bytes ? PutOnDisk(id, blob) : PutInHost(id, blob);
    KV_CHECK(stats_.host_bytes <= options_.host_budget_bytes, "park store over its host budget");
    if (status.ok()) {
        std::vector<std::uint8_t>().swap(blob);  // the disk path copied it; free the caller's RAM
    }
    return status;
}

Status ParkStore::PutOnDisk(SessionId id, const std::vector<std::uint8_t>& blob) {
    if (options_.spill_dir.empty()) {
        return NoRoom(id, blob.size(), "exceed the host budget");
    }
    return WriteToDisk(id, blob);  // the rename replaces an older spill file of `id`
}

Status ParkStore::WriteToDisk(SessionId id, std::span<const std::uint8_t> bytes) {
    KV_RETURN_IF_ERROR(WriteSpillFile(SpillPath(id), id, bytes));
    ++stats_.n_spills;
    const std::size_t n_bytes = bytes.size();  // `bytes` may be the entry's own blob
    auto [it, inserted] = entries_.try_emplace(id);
    if (!inserted) {
        Unaccount(it->second);
    }
    it->second.blob = std::vector<std::uint8_t>();  // frees the RAM
    it->second.n_bytes = n_bytes;
    it->second.on_disk = true;
    Account(id, it->second);
    return Status::Ok();
}

Status ParkStore::PutInHost(SessionId id, std::vector<std::uint8_t>& blob) {
    auto it = entries_.find(id);
    const std::size_t own_bytes =
        (it != entries_.end() && !it->second.on_disk) ? it->second.n_bytes : 0;
    const std::size_t limit_bytes = options_.host_budget_bytes - blob.size();
    if (stats_.host_bytes - own_bytes > limit_bytes && options_.spill_dir.empty()) {
        return NoRoom(id, blob.size(), "do not fit in the rest of the host budget");
    }
    KV_RETURN_IF_ERROR(SpillOthersUntil(limit_bytes, id));
    if (it = entries_.find(id); it != entries_.end()) {
        Drop(it);  // the older blob of `id`, and its file if it had one
    }
    Entry& entry = entries_[id];
    entry.n_bytes = blob.size();
    entry.blob = std::move(blob);
    Account(id, entry);
    return Status::Ok();
}

Status ParkStore::SpillOthersUntil(std::size_t limit_bytes, SessionId keep) {
    auto keep_it = entries_.find(keep);
    const std::size_t keep_bytes =
        (keep_it != entries_.end() && !keep_it->second.on_disk) ? keep_it->second.n_bytes : 0;
    auto lru_it = host_lru_.begin();
    while (stats_.host_bytes - keep_bytes > limit_bytes) {
        KV_CHECK(lru_it != host_lru_.end(), "park store host bytes out of sync with its LRU list");
        const SessionId victim = *lru_it++;  // advance first: Spill unlinks the victim's node
        if (victim == keep) {
            continue;
        }
        const Status status = WriteToDisk(victim, entries_.at(victim).blob);
        if (!status.ok()) {
            return Status(status.code(), "cannot park session " + std::to_string(keep) +
                                             ": spilling session " + std::to_string(victim) +
                                             " failed (it stays in RAM): " + status.message());
        }
    }
    return Status::Ok();
}

// ---- Take, Erase, queries ----

Result<std::vector<std::uint8_t>> ParkStore::Take(SessionId id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
        return NotFound("session " + std::to_string(id) + " is not parked");
    }
    if (!it->second.on_disk) {
        std::vector<std::uint8_t> blob = std::move(it->second.blob);
        Drop(it);
        return blob;
    }
    ++stats_.n_disk_reads;
    Result<std::vector<std::uint8_t>> blob = ReadSpillFile(SpillPath(id), id, it->second.n_bytes);
    Drop(it);  // removes the file, good or bad
    return blob;
}

void ParkStore::Erase(SessionId id) {
    auto it = entries_.find(id);
    if (it != entries_.end()) {
        Drop(it);
    }
}

bool ParkStore::IsOnDisk(SessionId id) const {
    auto it = entries_.find(id);
    return it != entries_.end() && it->second.on_disk;
}

std::filesystem::path ParkStore::SpillPath(SessionId id) const {
    if (options_.spill_dir.empty()) {
        return {};
    }
    return fs::path(options_.spill_dir) / (std::to_string(id) + ".park");
}

// ---- Bookkeeping ----

void ParkStore::Account(SessionId id, Entry& entry) {
    if (entry.on_disk) {
        ++stats_.n_disk;
        stats_.disk_bytes += entry.n_bytes;
    } else {
        ++stats_.n_host;
        stats_.host_bytes += entry.n_bytes;
        entry.lru = host_lru_.insert(host_lru_.end(), id);
    }
}

void ParkStore::Unaccount(Entry& entry) {
    if (entry.on_disk) {
        --stats_.n_disk;
        stats_.disk_bytes -= entry.n_bytes;
    } else {
        --stats_.n_host;
        stats_.host_bytes -= entry.n_bytes;
        host_lru_.erase(entry.lru);
    }
}

void ParkStore::Drop(EntryMap::iterator it) {
    Unaccount(it->second);
    if (it->second.on_disk) {
        std::error_code ec;
        fs::remove(SpillPath(it->first), ec);  // a leftover is swept by the destructor
    }
    entries_.erase(it);
}

}  // namespace kvs
