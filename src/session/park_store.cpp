#include "session/park_store.h"

#include "common/check.h"
#include "common/fd.h"
#include "common/file_io.h"
#include "common/xxh64.h"

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

// POSIX: flock here; open, read and write through common/fd.h.

namespace kvs {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "spill files assume a little-endian host");

constexpr std::string_view kMagic = "KVSPARK1";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 40;
constexpr const char* kLockName = ".park.lock";

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
    const UniqueFd fd = ec ? UniqueFd() : OpenFd(path, O_RDONLY);
    if (!fd.valid()) {
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
    int err =
        ReadAll(fd.get(), std::span(reinterpret_cast<std::uint8_t*>(&header), sizeof(header)));
    if (err == 0) {
        err = ReadAll(fd.get(), payload);
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
Result<UniqueFd> LockFolder(const fs::path& dir) {
    const fs::path path = dir / kLockName;
    UniqueFd fd = OpenFd(path, O_RDWR | O_CREAT, 0600);
    if (!fd.valid()) {
        return Status(StatusCode::kStorage,
                      "cannot create " + path.string() + ": " + ErrnoText(errno));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            return Status(StatusCode::kUnavailable,
                          "spill_dir " + dir.string() + " is in use by another ParkStore");
        }
        return Status(StatusCode::kStorage,
                      "spill_dir " + dir.string() + " cannot be locked: " + ErrnoText(err));
    }
    return fd;
}

}  // namespace

std::uint64_t ParkChecksum(std::span<const std::uint8_t> bytes) {
    return Xxh64(bytes);
}

// ---- Lifetime ----

Result<std::unique_ptr<ParkStore>> ParkStore::Create(ParkStoreOptions options) {
    if (options.spill_dir.empty()) {
        return std::unique_ptr<ParkStore>(new ParkStore(std::move(options), UniqueFd(), false));
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
    Result<UniqueFd> lock_fd = LockFolder(dir);
    if (!lock_fd.ok()) {
        return lock_fd.status();
    }
    RemoveSpillFiles(dir);  // left by a store that died; the lock says none is alive
    return std::unique_ptr<ParkStore>(
        new ParkStore(std::move(options), std::move(lock_fd).value(), created));
}

ParkStore::ParkStore(ParkStoreOptions options, UniqueFd lock_fd, bool created_dir)
    : options_(std::move(options)), lock_fd_(std::move(lock_fd)), created_dir_(created_dir) {}

ParkStore::~ParkStore() {
    if (!lock_fd_.valid()) {
        return;
    }
    const fs::path dir = options_.spill_dir;
    RemoveSpillFiles(dir);
    std::error_code ec;
    fs::remove(dir / kLockName, ec);
    (void)lock_fd_.Close();  // releases the flock
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
