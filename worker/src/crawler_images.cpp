// Crawler, an image's way from its transfer to its row: the image's own
// robots directives, the file stored (or spooled and uploaded to the agent),
// image_record(); and a re-crawl's known image confirmed without its body.
#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include "crawler/crawler.hpp"
#include "crawler/log.hpp"
#include "crawler/robots.hpp"

namespace crawler {

void Crawler::on_image(std::int64_t id, FetchResult&& r, std::shared_ptr<PendingFile> file) {
  Item* arrived_item = arrived(id, r);
  if (!arrived_item) return;
  Item& it = *arrived_item;
  if (redirected(id, it, r)) return;  // a new file for the next hop; this one goes with `file`
  if (r.code == CURLE_OK && r.status == 304 && (!it.known_etag.empty() || !it.known_last_modified.empty())) {
    confirm_unchanged(it, true);  // `file`, empty, goes with this scope
    return;
  }
  if (fetch_failed(it, r)) return;  // `file` goes with this scope: no partial file stays
  if (r.bytes == 0) {
    fail(it, "not_an_image", "not an image: the body is empty", std::nullopt);
    return;
  }
  // With robots on, the image's own X-Robots-Tag holds: an image marked
  // noimageai (or noai, noindex, noimageindex) is done without being kept.
  if (it.settings->robots && !r.robots_tags.empty()) {
    RobotsDirectives d = RobotsDirectives::of(r.robots_tags, agent_token(user_agent_for(*it.settings)));
    if (!d.image_allowed()) {
      ++stats_.skipped;
      complete(it, r.status, r.bytes, "X-Robots-Tag " + d.image_refusal() + ": not stored");
      return;  // `file` goes with this scope: nothing stays in the store
    }
  }
  enter(it, Stage::kStoring);  // from here the outcome is decided off the loop
  const SessionSettings& s = *it.settings;
  images_.store(id, std::move(file), std::move(r), ImageLimits{s.max_pixels, s.min_width, s.min_height, s.thumbnails});
}

void Crawler::image_stored(std::int64_t id, StoredImage&& image) {
  auto f = items_.find(id);
  if (f == items_.end()) return;
  Item& item = f->second;
  if (!image.error.empty()) {
    fail(item, image.error_kind.empty() ? "store" : image.error_kind.c_str(), image.error, std::nullopt);
    return;
  }
  const FetchResult& r = image.r;
  if (image.too_small) {
    ++stats_.skipped;
    complete(item, r.status, r.bytes,
             "smaller than min_width/min_height: " + std::to_string(image.info.width) + "x" +
                 std::to_string(image.info.height));
    return;
  }
  if (image.spooled) upload(item, std::move(image));
  else record(item, std::move(image));
}

void Crawler::upload(Item& item, StoredImage&& image) {
  enter(item, Stage::kUploading);
  upload_blob(item.id, std::move(image), 0);
}

void Crawler::upload_blob(std::int64_t id, StoredImage&& image, std::size_t blob) {
  std::shared_ptr<PendingFile> file;
  std::string sha256, ext;
  if (blob == 0) {
    file = std::move(image.spooled);
    sha256 = image.sha256;
    ext = image.info.ext;
  } else {
    StoredThumbnail& t = image.thumbnails[blob - 1];
    file = std::move(t.file);
    sha256 = t.sha256;
    ext = t.ext;
  }
  uploader_->upload(std::move(file), sha256, ext,
                    [this, id, blob, image = std::move(image)](const UploadOutcome& o) mutable {
                      uploaded(id, std::move(image), blob, o);
                    });
}

void Crawler::uploaded(std::int64_t id, StoredImage&& image, std::size_t blob, const UploadOutcome& o) {
  auto f = items_.find(id);
  if (f == items_.end()) return;
  Item& item = f->second;
  switch (o.verdict) {
    case UploadVerdict::kStored:
      // The bytes are durable at the primary's node: the next thumbnail,
      // and only once all are there, the row.
      if (blob < image.thumbnails.size()) upload_blob(id, std::move(image), blob + 1);
      else record(item, std::move(image));
      return;
    case UploadVerdict::kStopped:
      give_back(item);
      return;
    case UploadVerdict::kUnauthorized:
      // Not this image's fault: its lease goes back, the worker stops.
      give_back(item);
      fatal(o.error);
      return;
    case UploadVerdict::kTooLarge:
      fail(item, "too_large", o.error, std::nullopt);
      return;
    case UploadVerdict::kStoreFull:
      // A full disk is the operator's to fix: retried by the attempts rule,
      // late enough to give them a chance.
      fail(item, "store_full", o.error, 300);
      return;
    case UploadVerdict::kBadFile:
    case UploadVerdict::kRejected:
    case UploadVerdict::kTryAgain:  // never given by the uploader; a retry all the same
      fail(item, "upload", o.error, backoff_seconds(item.attempts));
      return;
  }
}

void Crawler::record(Item& item, StoredImage&& image) {
  enter(item, Stage::kReported);
  ++stats_.images;
  const FetchResult& r = image.r;
  stats_.bytes += r.bytes;
  ImageRecord rec;
  rec.item = item.id;
  rec.session = item.session;
  rec.url = item.url;
  rec.found_on = item.found_on;
  rec.sha256 = std::move(image.sha256);
  rec.file_path = std::move(image.file_path);
  rec.file_size = r.bytes;
  rec.width = image.info.width;
  rec.height = image.info.height;
  rec.format = image.info.format;
  rec.content_type = r.content_type;
  rec.http_status = r.status;
  rec.etag = r.etag;
  rec.last_modified = r.last_modified;
  if (image.thumbnails_asked) {
    nlohmann::json thumbs = nlohmann::json::object();
    for (const StoredThumbnail& t : image.thumbnails)
      thumbs[t.name] = {{"sha256", t.sha256}, {"file_path", t.file_path}, {"width", t.width},
                        {"height", t.height}, {"bytes", t.bytes}};
    rec.thumbnails_json = thumbs.dump();
  }
  if (!image.thumbnail_error.empty()) {
    CRAWLER_LOG(warn) << item.url << ": recorded without thumbnails: " << image.thumbnail_error;
    rec.thumbnail_error = std::move(image.thumbnail_error);
  }
  api_.record_image(rec, [this, id = item.id, session = item.session, size = r.bytes](const CallStatus& st) {
    if (st.ok) {
      SessionTally& t = tallies_[session];
      ++t.images;
      t.bytes += size;
    }
    acknowledged(id, st, "image_record");
  });
  request_claim();
}

void Crawler::confirm_unchanged(Item& it, bool fetched) {
  enter(it, Stage::kReported);
  request_claim();
  api_.image_unchanged(it.id, it.session, it.url, fetched,
                       [this, id = it.id, session = it.session, fetched](const CallStatus& st, bool known) {
                         if (st.ok && !known) {
                           // Its images row was deleted meanwhile: the item
                           // goes back to the queue, whose next lease brings
                           // no validators, and it is fetched whole.
                           ++stats_.retries;
                           ++stats_.error_kinds["image_gone"];
                           api_.fail(id, session, "its images row was deleted during the re-crawl: fetched again",
                                     1L, [this, id](const CallStatus& s2) { acknowledged(id, s2, "crawl_fail"); });
                           return;
                         }
                         if (st.ok) ++(fetched ? stats_.unchanged : stats_.fresh);
                         acknowledged(id, st, "image_unchanged");
                       });
}

}  // namespace crawler
