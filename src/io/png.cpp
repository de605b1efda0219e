#include "io/png.h"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <limits>

// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/png_encode.h"
#include "igan/image.h"

namespace igan {

// libpng and libjpeg report errors by longjmp. Each call into them happens inside a small
// wrapper below that holds the setjmp and only trivially destructible locals, so a jump never
// skips a C++ destructor; the wrappers return false and the caller throws.

namespace {

constexpr int64_t kMaxPngDimension = 0x7fffffff;  // the PNG specification's limit
constexpr png_alloc_size_t kMaxPngChunkBytes = 8 << 20;

struct PngErrorInfo {
    char message[256] = {};
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
    auto* info = static_cast<PngErrorInfo*>(png_get_error_ptr(png));
    std::snprintf(info->message, sizeof info->message, "%s", message);
    png_longjmp(png, 1);
}

// The library never prints; warnings concern recoverable, ancillary problems.
void on_png_warning(png_structp, png_const_charp) {}

bool valid_text_key(const std::string& key) {
    if (key.empty() || key.size() > 79 || key.front() == ' ' || key.back() == ' ') return false;
    for (size_t i = 0; i < key.size(); ++i) {
        if (key[i] < 32 || key[i] > 126 || (key[i] == ' ' && key[i + 1] == ' ')) return false;
    }
    return true;
}

}  // namespace

struct PngWriterState {
    PngWriterState(const std::string& path, int64_t width, int64_t height, int level, int threads)
        : path(path), width(width), height(height), file(path),
          encoder(width, height, level, threads) {}

    std::string path;
    int64_t width;
    int64_t height;
    int64_t rows = 0;
    AtomicFile file;
    PngImageEncoder encoder;
    std::string pending;   // encoded bytes not yet written
    bool failed = false;   // after an error nothing more is written
    bool finished = false;
};

namespace {

void write_pending(PngWriterState& s) {
    try {
        s.file.write(s.pending.data(), s.pending.size());
    } catch (...) {
        s.failed = true;
        throw;
    }
    s.pending.clear();
}

}  // namespace

PngWriter::PngWriter(const std::string& path, int64_t width, int64_t height,
                     std::vector<std::pair<std::string, std::string>> text_chunks,
                     int compression_level, int threads) {
    const std::string what = "cannot write " + path + ": ";
    if (width < 1 || width > kMaxPngDimension || height < 1 || height > kMaxPngDimension) {
        throw Error(what + "PNG size " + std::to_string(width) + "x" + std::to_string(height) +
                    " is outside 1.." + std::to_string(kMaxPngDimension));
    }
    if (compression_level < 0 || compression_level > 9) {
        throw Error(what + "compression level " + std::to_string(compression_level) +
                    " is outside 0..9");
    }
    for (const auto& [key, value] : text_chunks) {
        if (!valid_text_key(key)) {
            throw Error(what + "PNG text key \"" + key +
                        "\" must be 1-79 printable ASCII characters without leading, trailing "
                        "or double spaces");
        }
        if (value.find('\0') != std::string::npos) {
            throw Error(what + "PNG text \"" + key + "\" contains a NUL byte");
        }
    }

    state_ = std::make_unique<PngWriterState>(path, width, height, compression_level,
                                              threads > 0 ? threads : png_threads());
    state_->pending = png_head(width, height, text_chunks);
    write_pending(*state_);
}

PngWriter::~PngWriter() = default;

int64_t PngWriter::rows_written() const { return state_->rows; }

void PngWriter::write_rows(const uint8_t* rgb, int64_t n_rows) {
    PngWriterState& s = *state_;
    const std::string what = "cannot write " + s.path + ": ";
    if (s.failed || s.finished) throw Error(what + "the PNG writer is already closed");
    if (n_rows < 0 || n_rows > s.height - s.rows) {
        throw Error(what + "writing " + std::to_string(n_rows) + " more rows after " +
                    std::to_string(s.rows) + " would not fit the declared height of " +
                    std::to_string(s.height));
    }
    if (n_rows == 0) return;
    if (rgb == nullptr) throw Error(what + "no pixel data");
    try {
        s.encoder.add_rows(rgb, n_rows, &s.pending);
    } catch (...) {
        s.failed = true;
        throw;
    }
    write_pending(s);
    s.rows += n_rows;
}

void PngWriter::finish() {
    PngWriterState& s = *state_;
    const std::string what = "cannot write " + s.path + ": ";
    if (s.failed || s.finished) throw Error(what + "the PNG writer is already closed");
    if (s.rows != s.height) {
        throw Error(what + "only " + std::to_string(s.rows) + " of " + std::to_string(s.height) +
                    " rows were written");
    }
    s.pending = png_tail();
    write_pending(s);
    s.finished = true;
    s.file.commit();
}

namespace {

constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool is_png(const std::string& bytes) {
    return bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0;
}

bool is_jpeg(const std::string& bytes) {
    return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xff &&
           static_cast<unsigned char>(bytes[1]) == 0xd8 &&
           static_cast<unsigned char>(bytes[2]) == 0xff;
}

// Refuses images whose pixel count exceeds the limit or whose buffer would not fit in memory
// arithmetic, before anything is allocated.
void check_pixels(const std::string& path, int64_t width, int64_t height, int64_t max_pixels) {
    if (width < 1 || height < 1) throw Error(path + ": image has no pixels");
    if (width > max_pixels / height) {
        throw Error(path + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                    ", more than the limit of " + std::to_string(max_pixels) +
                    " pixels (raise max_pixels if it is trusted)");
    }
    if (static_cast<uint64_t>(width * height) > std::numeric_limits<size_t>::max() / 3) {
        throw Error(path + ": image is too large for this machine");
    }
}

// Chunk types come from the file: printable or escaped.
std::string quote_chunk(const std::string& type) {
    std::string out;
    for (unsigned char c : type) {
        if (c >= 32 && c < 127 && c != '"' && c != '\\') {
            out += char(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

struct PngReader {
    ~PngReader() { png_destroy_read_struct(&png, &info, nullptr); }

    png_structp png = nullptr;
    png_infop info = nullptr;
    PngErrorInfo error;
    const std::string* bytes = nullptr;
    size_t position = 0;
};

void read_callback(png_structp png, png_bytep out, size_t size) {
    auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
    if (size > reader->bytes->size() - reader->position) png_error(png, "file is truncated");
    std::memcpy(out, reader->bytes->data() + reader->position, size);
    reader->position += size;
}

bool try_png_header(PngReader* reader) {
    if (setjmp(png_jmpbuf(reader->png))) return false;
    png_set_read_fn(reader->png, reader, read_callback);
    png_set_user_limits(reader->png, kMaxPngDimension, kMaxPngDimension);
    // Bounds what compressed text and profile chunks may inflate to.
    png_set_chunk_malloc_max(reader->png, kMaxPngChunkBytes);
    png_read_info(reader->png, reader->info);
    return true;
}

bool try_png_to_rgb8(PngReader* reader) {
    if (setjmp(png_jmpbuf(reader->png))) return false;
    png_set_expand(reader->png);  // palette and low-bit gray to 8 bit, tRNS to alpha
    png_set_scale_16(reader->png);
    png_set_strip_alpha(reader->png);
    png_set_gray_to_rgb(reader->png);
    png_set_interlace_handling(reader->png);
    png_read_update_info(reader->png, reader->info);
    return true;
}

bool try_png_pixels(PngReader* reader, png_bytepp rows) {
    if (setjmp(png_jmpbuf(reader->png))) return false;
    png_read_image(reader->png, rows);
    png_read_end(reader->png, nullptr);
    return true;
}

// libpng allocates a chunk's declared length before reading its data, so a 70-byte file that
// declares a 1.6-GB text chunk costs 1.6 GB. Every chunk up to IEND must fit in the file.
void check_png_chunks(const std::string& path, const std::string& bytes) {
    const auto be32 = [&](size_t at) {
        uint32_t v = 0;
        for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
        return v;
    };
    for (size_t at = 8; at + 8 <= bytes.size();) {
        const uint64_t length = be32(at);
        const std::string type = bytes.substr(at + 4, 4);
        if (length + 12 > bytes.size() - at) {
            throw Error(path + ": corrupt PNG data: chunk \"" + quote_chunk(type) +
                        "\" declares " + std::to_string(length) + " bytes of data, the file has " +
                        std::to_string(bytes.size() - at - 8) + " left (truncated?)");
        }
        if (type == "IEND") return;
        at += 12 + length;
    }
}

void open_png(PngReader& reader, const std::string& path, const std::string& bytes) {
    check_png_chunks(path, bytes);
    reader.bytes = &bytes;
    reader.png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader.error, on_png_error, on_png_warning);
    if (reader.png != nullptr) reader.info = png_create_info_struct(reader.png);
    if (reader.info == nullptr) throw Error(path + ": out of memory reading PNG");
    if (!try_png_header(&reader)) {
        throw Error(path + ": corrupt PNG data: " + reader.error.message);
    }
}

Image decode_png(const std::string& path, const std::string& bytes, int64_t max_pixels) {
    PngReader reader;
    open_png(reader, path, bytes);
    Image image;
    image.width = png_get_image_width(reader.png, reader.info);
    image.height = png_get_image_height(reader.png, reader.info);
    image.channels = 3;
    check_pixels(path, image.width, image.height, max_pixels);
    if (!try_png_to_rgb8(&reader)) {
        throw Error(path + ": corrupt PNG data: " + reader.error.message);
    }
    const size_t stride = static_cast<size_t>(image.width) * 3;
    if (png_get_channels(reader.png, reader.info) != 3 ||
        png_get_bit_depth(reader.png, reader.info) != 8 ||
        png_get_rowbytes(reader.png, reader.info) != stride) {
        throw Error(path + ": unsupported PNG layout");
    }
    image.pixels.resize(stride * static_cast<size_t>(image.height));
    std::vector<png_bytep> rows(static_cast<size_t>(image.height));
    for (size_t y = 0; y < rows.size(); ++y) rows[y] = image.pixels.data() + y * stride;
    if (!try_png_pixels(&reader, rows.data())) {
        throw Error(path + ": corrupt PNG data: " + reader.error.message);
    }
    return image;
}

struct JpegErrorManager {
    jpeg_error_mgr base;  // first, so libjpeg's pointer to it converts back to ours
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool truncated;
};

[[noreturn]] void on_jpeg_error(j_common_ptr cinfo) {
    auto* error = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, error->message);
    std::longjmp(error->jump, 1);
}

// libjpeg pads truncated data with an end marker and only warns; a truncated file is an
// error here. Other warnings are recoverable, and the library never prints.
void on_jpeg_message(j_common_ptr cinfo, int level) {
    auto* error = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) error->truncated = true;
}

struct JpegReader {
    ~JpegReader() { jpeg_destroy_decompress(&cinfo); }

    jpeg_decompress_struct cinfo{};  // zeroed, so destroying it is safe at any point
    JpegErrorManager error{};
};

bool try_jpeg_header(JpegReader* reader, const std::string& bytes) {
    reader->cinfo.err = jpeg_std_error(&reader->error.base);
    reader->error.base.error_exit = on_jpeg_error;
    reader->error.base.emit_message = on_jpeg_message;
    if (setjmp(reader->error.jump)) return false;
    jpeg_create_decompress(&reader->cinfo);
    jpeg_mem_src(&reader->cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
                 static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&reader->cinfo, TRUE);
    reader->cinfo.out_color_space = JCS_RGB;
    return true;
}

bool try_jpeg_pixels(JpegReader* reader, uint8_t* pixels) {
    if (setjmp(reader->error.jump)) return false;
    jpeg_decompress_struct& cinfo = reader->cinfo;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3 || cinfo.output_width != cinfo.image_width ||
        cinfo.output_height != cinfo.image_height) {
        std::snprintf(reader->error.message, sizeof reader->error.message,
                      "unexpected output layout");
        return false;
    }
    const size_t stride = static_cast<size_t>(cinfo.output_width) * 3;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    return true;
}

Image decode_jpeg(const std::string& path, const std::string& bytes, int64_t max_pixels) {
    JpegReader reader;
    if (!try_jpeg_header(&reader, bytes)) {
        throw Error(path + ": corrupt or unsupported JPEG data: " + reader.error.message);
    }
    Image image;
    image.width = reader.cinfo.image_width;
    image.height = reader.cinfo.image_height;
    image.channels = 3;
    check_pixels(path, image.width, image.height, max_pixels);
    image.pixels.resize(static_cast<size_t>(image.width * image.height) * 3);
    if (!try_jpeg_pixels(&reader, image.pixels.data())) {
        throw Error(path + ": corrupt or unsupported JPEG data: " + reader.error.message);
    }
    if (reader.error.truncated) throw Error(path + ": truncated JPEG data (incomplete file?)");
    return image;
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name, int64_t max_pixels) {
    if (is_png(bytes)) return decode_png(name, bytes, max_pixels);
    if (is_jpeg(bytes)) return decode_jpeg(name, bytes, max_pixels);
    throw Error(name + ": not a PNG or JPEG image (unrecognised file signature)");
}

Image read_image(const std::string& path, int64_t max_pixels) {
    return decode_image(read_file(path), path, max_pixels);
}

std::map<std::string, std::string> read_png_text(const std::string& path) {
    const std::string bytes = read_file(path);
    if (!is_png(bytes)) throw Error(path + ": not a PNG file (unrecognised file signature)");
    PngReader reader;
    open_png(reader, path, bytes);
    png_textp text = nullptr;
    int n_text = 0;
    png_get_text(reader.png, reader.info, &text, &n_text);
    std::map<std::string, std::string> chunks;
    for (int i = 0; i < n_text; ++i) chunks.emplace(text[i].key, text[i].text);
    return chunks;
}

}  // namespace igan
