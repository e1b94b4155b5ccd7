// Transcript parsing over the shared corpus's subtitle edge cases (expected cue counts from
// its MANIFEST, or the clear error) and unit checks of timestamps, encodings and markup.
#include <gtest/gtest.h>

#include <filesystem>

#include "docdsa/ingest/transcript.h"

namespace docdsa::ingest {
namespace {

namespace fs = std::filesystem;
const std::string kCorpus = DOCDSA_CORPUS;

TEST(Transcript, Timestamps) {
  EXPECT_EQ(parse_timestamp("00:00:06,500"), 6500);
  EXPECT_EQ(parse_timestamp("01:02:03.004"), 3723004);
  EXPECT_EQ(parse_timestamp("02:03.5"), 123500);
  EXPECT_EQ(parse_timestamp("0:0:0.570"), 570);
  EXPECT_EQ(parse_timestamp("00:00:01"), 1000);
  EXPECT_EQ(parse_timestamp("00:00:1d.890"), -1);
  EXPECT_EQ(parse_timestamp("00:61:00.000"), -1);
  EXPECT_EQ(parse_timestamp(""), -1);
}

TEST(Transcript, EncodingsAndLineEndings) {
  std::string enc;
  EXPECT_EQ(*decode_text("a\r\nb\rc\n", &enc), "a\nb\nc\n");
  EXPECT_EQ(enc, "utf-8");
  EXPECT_EQ(*decode_text("\xEF\xBB\xBFhi", &enc), "hi");
  EXPECT_EQ(enc, "utf-8 (BOM)");
  EXPECT_EQ(*decode_text(std::string("\xFF\xFEh\0i\0", 6), &enc), "hi");
  EXPECT_EQ(enc, "utf-16le");
  EXPECT_EQ(*decode_text("caf\xE9 \x93quoted\x94", &enc), "caf\xC3\xA9 \xE2\x80\x9Cquoted\xE2\x80\x9D");
  EXPECT_EQ(enc, "windows-1252");
  EXPECT_FALSE(decode_text(std::string("ab\0cd", 5), &enc).ok());
}

TEST(Transcript, VoiceTagsEntitiesAndMarkup) {
  auto t = parse_vtt("WEBVTT\n\n00:01.000 --> 00:02.000 align:start\n<v.loud Roger Bingham><i>Fish &amp; chips</i> &#x263A;</v>\n", "x.vtt");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->cues.size(), 1u);
  EXPECT_EQ(t->cues[0].speaker, "Roger Bingham");
  EXPECT_EQ(t->cues[0].text, "Fish & chips \xE2\x98\xBA");
  EXPECT_EQ(t->cues[0].start_ms, 1000);
  EXPECT_EQ(t->cues[0].end_ms, 2000);
}

TEST(Transcript, RollingAutoCaptionRepeatsAreRemovedAndCounted) {
  auto t = parse_vtt(
      "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello <00:00:01.500><c>there</c>\n\n"
      "00:00:02.000 --> 00:00:03.000\nhello there\nhow are <00:00:02.500><c>you</c>\n",
      "yt.vtt");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->cues.size(), 2u);
  EXPECT_EQ(t->cues[1].text, "how are you");
  EXPECT_EQ(t->rolling_repeats_removed, 1);
}

TEST(Transcript, PlainTextSpeakersAndTimes) {
  auto t = parse_text_transcript(
      "Title line\n[00:00:05] ALICE SMITH: Hello there.\nmore from Alice\n\nBOB  1:02\nReply from Bob.\nNote: not a speaker\n", "t.txt");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->cues.size(), 3u);
  EXPECT_EQ(t->cues[1].speaker, "ALICE SMITH");
  EXPECT_EQ(t->cues[1].start_ms, 5000);
  EXPECT_EQ(t->cues[1].text, "Hello there.\nmore from Alice");
  EXPECT_EQ(t->cues[2].speaker, "BOB");
  EXPECT_EQ(t->cues[2].start_ms, 62000);
  EXPECT_EQ(t->cues[2].text, "Reply from Bob.\nNote: not a speaker");
}

class CorpusTranscripts : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kCorpus)) GTEST_SKIP() << "corpus not found at " << kCorpus;
  }
};

TEST_F(CorpusTranscripts, EveryEdgeCaseParsesWithTheRightCountOrFailsClearly) {
  // file -> expected cues (MANIFEST counts); -1: must fail with the given text in the error.
  const struct { const char* file; int cues; const char* error; } cases[] = {
      {"srt/go-astisub__example-in-carriage-return.srt", 3, ""},
      {"srt/go-astisub__example-in-html-entities.srt", 3, ""},
      {"srt/go-astisub__example-in-non-utf8.srt", 6, ""},
      {"srt/go-astisub__example-in-styled.srt", 10, ""},
      {"srt/go-astisub__missing-sequence-in.srt", 6, ""},
      {"srt/pysrt__bom-utf-16-be.srt", 7, ""},
      {"srt/pysrt__bom-utf-16-le.srt", 7, ""},
      {"srt/pysrt__bom-utf-32-le.srt", 7, ""},
      {"srt/pysrt__bom-utf-8.srt", 7, ""},
      {"srt/pysrt__capability_tester.srt", 37, ""},
      {"srt/pysrt__empty.srt", 7, ""},
      {"srt/pysrt__invalid.srt", 1, ""},
      {"srt/pysrt__no-indexes.srt", 7, ""},
      {"srt/pysrt__overlapping-dialogues.srt", 4, ""},
      {"srt/webvtt-py__invalid_format1.srt", -1, "no usable cues"},
      {"srt/webvtt-py__invalid_timeframe.srt", 5, ""},
      {"srt/webvtt-py__missing_caption_text.srt", 5, ""},
      {"srt/webvtt-py__one_caption.srt", 1, ""},
      {"srt/webvtt-py__sample.srt", 5, ""},
      {"vtt/go-astisub__broken-1-in.vtt", -1, "not a WebVTT file"},
      {"vtt/go-astisub__example-in-carriage-return.vtt", 3, ""},
      {"vtt/go-astisub__example-in-html-entities.vtt", 3, ""},
      {"vtt/go-astisub__example-in-non-utf8.vtt", 6, ""},
      {"vtt/go-astisub__example-in.vtt", 6, ""},
      {"vtt/typeagent__Confuse-A-Cat.vtt", 57, ""},
      {"vtt/typeagent__Parrot_Sketch.vtt", 76, ""},
      {"vtt/vttjs__blank-file-with-bom.vtt", -1, "no text"},
      {"vtt/vttjs__bom-garbage-data.vtt", -1, "not a WebVTT file"},
      {"vtt/vttjs__cycle-collector-talk.vtt", 15, ""},
      {"vtt/vttjs__long_string_multiple_languages.vtt", 1, ""},
      {"vtt/vttjs__many-comments.vtt", 2, ""},
      {"vtt/vttjs__regions.vtt", 6, ""},
      {"vtt/vttjs__spec-example.vtt", 13, ""},
      {"vtt/webvtt-py__captions_with_bom.vtt", 4, ""},
      {"vtt/webvtt-py__comments.vtt", 3, ""},
      {"vtt/webvtt-py__cue_tags.vtt", 3, ""},
      {"vtt/webvtt-py__empty.vtt", -1, "empty file"},
      {"vtt/webvtt-py__invalid.vtt", -1, "not a WebVTT file"},
      {"vtt/webvtt-py__metadata_headers.vtt", 2, ""},
      {"vtt/webvtt-py__no_captions.vtt", -1, "no usable cues"},
      {"vtt/webvtt-py__sample.vtt", 16, ""},
      {"vtt/webvtt-py__styles.vtt", 1, ""},
      {"vtt/webvtt-py__teams_timeframe.vtt", 2, ""},
      {"vtt/webvtt-py__using_identifiers.vtt", 6, ""},
  };
  for (const auto& c : cases) {
    const std::string path = kCorpus + "/transcripts/edge-cases/" + c.file;
    auto t = read_transcript(path);
    if (c.cues < 0) {
      ASSERT_FALSE(t.ok()) << c.file;
      EXPECT_NE(t.error().message.find(c.error), std::string::npos) << t.error().message;
      EXPECT_NE(t.error().message.find(path), std::string::npos) << "the error must name the file";
    } else {
      ASSERT_TRUE(t.ok()) << t.error().message;
      EXPECT_EQ(static_cast<int>(t->cues.size()), c.cues) << c.file;
    }
  }
}

TEST_F(CorpusTranscripts, LongTranscriptsKeepSpeakersAndTimes) {
  auto vtt = read_transcript(kCorpus + "/transcripts/oyez-scotus/2019.17-1618.DERIVED.vtt");
  ASSERT_TRUE(vtt.ok());
  EXPECT_GT(vtt->cues.size(), 400u);
  EXPECT_EQ(vtt->cues[0].speaker, "John G. Roberts, Jr.");
  auto srt = read_transcript(kCorpus + "/transcripts/oyez-scotus/2019.17-1618.DERIVED.srt");
  ASSERT_TRUE(srt.ok());
  EXPECT_EQ(srt->cues[0].speaker, "John G. Roberts, Jr.");
  auto txt = read_transcript(kCorpus + "/transcripts/podcast/typeagent__Episode_53_AdrianTchaikovsky.txt");
  ASSERT_TRUE(txt.ok());
  EXPECT_EQ(txt->cues[1].speaker, "ADRIAN TCHAIKOVSKY");
  auto cp1252 = read_transcript(kCorpus + "/transcripts/subtitles-long/pysrt__windows-1252.srt");
  auto utf8 = read_transcript(kCorpus + "/transcripts/subtitles-long/pysrt__utf-8.srt");
  ASSERT_TRUE(cp1252.ok() && utf8.ok());
  EXPECT_EQ(cp1252->encoding, "windows-1252");
  ASSERT_EQ(cp1252->cues.size(), utf8->cues.size());
  for (size_t i = 0; i < utf8->cues.size(); ++i) EXPECT_EQ(cp1252->cues[i].text, utf8->cues[i].text) << i;
}

}  // namespace
}  // namespace docdsa::ingest
