// Attribute compression: a bag (attributes.h) to CompressedAttributes and back.
//
// Every name and every string value (string-map keys and values too) becomes a word index
// (global_dictionary.h); int64, double, bool, bytes, timestamp and duration values travel in
// their own typed maps as they are.
#ifndef MIXERCLIENT_COMPRESSOR_H_
#define MIXERCLIENT_COMPRESSOR_H_

#include <string>
#include <string_view>
#include <vector>

#include "mixerclient/attributes.h"
#include "mixerclient/global_dictionary.h"
#include "mixerclient/messages.h"
#include "mixerclient/status.h"

namespace mixerclient {

// Adds one attribute to `out`, its words to `dict`.
void CompressAttribute(std::string_view name, const Value& value, MessageDictionary* dict,
                       CompressedAttributes* out);

// A whole bag, with its own message words (as a Check request carries it).
CompressedAttributes Compress(const Attributes& attributes, int32_t global_word_count);

// The bag a message carries. `message_words` are the words negative indexes name (the
// message's own, or a report's default_words); an index naming no word, or a name appearing
// twice, is INVALID_ARGUMENT saying which.
Status Decompress(const CompressedAttributes& message, const std::vector<std::string>& message_words,
                  int32_t global_word_count, Attributes* out);

}  // namespace mixerclient

#endif  // MIXERCLIENT_COMPRESSOR_H_
