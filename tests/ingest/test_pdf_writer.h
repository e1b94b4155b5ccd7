// Test inputs for OCR made at test time: small PDFs written byte by byte, with pages of text
// (Helvetica, WinAnsi: French accents included), pages that are only an image (a "scan"), a
// damaged image stream, any page size, and optional RC4 (revision 2) password protection.
// A scan is made by rendering a text page with Poppler, so no image files are committed.
#pragma once

#include <poppler-qt6.h>

#include <QByteArray>
#include <QCryptographicHash>
#include <QImage>
#include <QTransform>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace docdsa::testpdf {

struct Page {
  double width = 612, height = 792;  // points
  std::vector<std::string> lines;    // text page: UTF-8 lines (Latin-1 characters only)
  QImage image;                      // image page: drawn over the whole page (grayscale)
  bool damaged_image = false;        // image page: its stream is not valid Flate data
};

namespace detail {

inline std::string latin1(const std::string& utf8) {
  return QString::fromStdString(utf8).toLatin1().toStdString();
}

inline std::string pdf_string(const std::string& s) {
  std::string o = "(";
  for (char c : s) {
    if (c == '(' || c == ')' || c == '\\') o += '\\';
    o += c;
  }
  return o + ")";
}

inline std::string hex(const std::string& b) {
  static const char* d = "0123456789ABCDEF";
  std::string o;
  for (unsigned char c : b) o += d[c >> 4], o += d[c & 15];
  return o;
}

inline std::string rc4(const std::string& key, const std::string& data) {
  unsigned char s[256];
  for (int i = 0; i < 256; ++i) s[i] = static_cast<unsigned char>(i);
  for (int i = 0, j = 0; i < 256; ++i) {
    j = (j + s[i] + static_cast<unsigned char>(key[static_cast<size_t>(i) % key.size()])) & 255;
    std::swap(s[i], s[j]);
  }
  std::string out = data;
  for (size_t k = 0, i = 0, j = 0; k < out.size(); ++k) {
    i = (i + 1) & 255;
    j = (j + s[i]) & 255;
    std::swap(s[i], s[j]);
    out[k] = static_cast<char>(out[k] ^ s[(s[i] + s[j]) & 255]);
  }
  return out;
}

inline std::string md5(const std::string& b) {
  return QCryptographicHash::hash(QByteArray::fromStdString(b), QCryptographicHash::Md5).toStdString();
}

}  // namespace detail

// The PDF bytes for `pages`; with `user_password`, encrypted (RC4 40-bit, the oldest standard
// handler), so it cannot be read without the password.
inline std::string write(const std::vector<Page>& pages, const std::string& user_password = "") {
  using namespace detail;
  const bool encrypt = !user_password.empty();
  static const std::string kPad(
      "\x28\xBF\x4E\x5E\x4E\x75\x8A\x41\x64\x00\x4E\x56\xFF\xFA\x01\x08\x2E\x2E\x00\xB6\xD0\x68\x3E\x80\x2F\x0C\xA9\xFE\x64\x53"
      "\x69\x7A",
      32);
  const auto padded = [&](const std::string& p) { return (p + kPad).substr(0, 32); };
  const std::string id0 = md5("docdsa test pdf");
  std::string O, U, file_key;
  const int32_t perms = -44;
  if (encrypt) {
    O = rc4(md5(padded("owner")).substr(0, 5), padded(user_password));
    std::string p4(4, '\0');
    for (int i = 0; i < 4; ++i) p4[static_cast<size_t>(i)] = static_cast<char>((static_cast<uint32_t>(perms) >> (8 * i)) & 255);
    file_key = md5(padded(user_password) + O + p4 + id0).substr(0, 5);
    U = rc4(file_key, kPad);
  }
  const auto obj_key = [&](int num) {
    std::string k = file_key;
    k += static_cast<char>(num & 255), k += static_cast<char>((num >> 8) & 255), k += static_cast<char>((num >> 16) & 255);
    k += '\0', k += '\0';
    return md5(k).substr(0, 10);
  };
  // Objects: 1 catalog, 2 pages, 3 font, then per page: page, content, image.
  std::vector<std::string> objs(3);
  std::string kids;
  for (const Page& p : pages) {
    const int page_no = static_cast<int>(objs.size()) + 1, content_no = page_no + 1, image_no = page_no + 2;
    kids += std::to_string(page_no) + " 0 R ";
    char box[96];
    std::snprintf(box, sizeof(box), "[0 0 %.2f %.2f]", p.width, p.height);
    std::string content, image;
    if (!p.image.isNull()) {
      char cm[128];
      std::snprintf(cm, sizeof(cm), "q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q", p.width, p.height);
      content = cm;
      const QImage g = p.image.convertToFormat(QImage::Format_Grayscale8);
      std::string raw;
      for (int y = 0; y < g.height(); ++y)
        raw.append(reinterpret_cast<const char*>(g.constScanLine(y)), static_cast<size_t>(g.width()));
      std::string data = p.damaged_image ? std::string(raw.size() / 50 + 64, '\x5a')
                                         : qCompress(QByteArray::fromStdString(raw)).mid(4).toStdString();
      if (encrypt) data = rc4(obj_key(image_no), data);
      image = "<< /Type /XObject /Subtype /Image /Width " + std::to_string(g.width()) + " /Height " + std::to_string(g.height()) +
              " /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length " + std::to_string(data.size()) +
              " >>\nstream\n" + data + "\nendstream";
    } else {
      content = "BT /F1 14 Tf 18 TL 72 " + std::to_string(static_cast<int>(p.height) - 90) + " Td";
      for (const auto& l : p.lines) content += " " + pdf_string(latin1(l)) + " Tj T*";
      content += " ET";
    }
    if (encrypt) content = rc4(obj_key(content_no), content);
    // A scanned page has no fonts, as a scanner's PDF (its OCR renders it as one, ocr.cpp).
    objs.push_back("<< /Type /Page /Parent 2 0 R /MediaBox " + std::string(box) + " /Contents " + std::to_string(content_no) +
                   " 0 R /Resources << " +
                   (image.empty() ? "/Font << /F1 3 0 R >> " : "/XObject << /Im0 " + std::to_string(image_no) + " 0 R >> ") +
                   ">> >>");
    objs.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
    objs.push_back(image.empty() ? "null" : image);
  }
  objs[0] = "<< /Type /Catalog /Pages 2 0 R >>";
  objs[1] = "<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages.size()) + " >>";
  objs[2] = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";
  if (encrypt)
    objs.push_back("<< /Filter /Standard /V 1 /R 2 /O <" + hex(O) + "> /U <" + hex(U) + "> /P " + std::to_string(perms) + " >>");
  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objs.size(); ++i) {
    offsets.push_back(out.size());
    out += std::to_string(i + 1) + " 0 obj\n" + objs[i] + "\nendobj\n";
  }
  const size_t xref = out.size();
  out += "xref\n0 " + std::to_string(objs.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t off : offsets) {
    char line[24];
    std::snprintf(line, sizeof(line), "%010zu 00000 n \n", off);
    out += line;
  }
  out += "trailer\n<< /Size " + std::to_string(objs.size() + 1) + " /Root 1 0 R /ID [<" + hex(id0) + "> <" + hex(id0) + ">]" +
         (encrypt ? " /Encrypt " + std::to_string(objs.size()) + " 0 R" : "") + " >>\nstartxref\n" + std::to_string(xref) +
         "\n%%EOF\n";
  return out;
}

// A scanned page: `lines` rendered as a text page at `dpi` by Poppler, as a grayscale image
// (turned clockwise by `rotate` degrees: a page fed into the scanner sideways).
inline QImage scan(const std::vector<std::string>& lines, int dpi = 300, int rotate = 0) {
  Page p;
  p.lines = lines;
  const std::string bytes = write({p});
  auto doc = Poppler::Document::loadFromData(QByteArray::fromStdString(bytes));
  if (!doc) return {};
  doc->setRenderHint(Poppler::Document::Antialiasing);
  doc->setRenderHint(Poppler::Document::TextAntialiasing);
  std::unique_ptr<Poppler::Page> page = doc->page(0);
  QImage img = page->renderToImage(dpi, dpi).convertToFormat(QImage::Format_Grayscale8);
  return rotate ? img.transformed(QTransform().rotate(rotate)) : img;
}

}  // namespace docdsa::testpdf
