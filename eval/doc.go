// Package eval holds the statistics and file parsing behind
// `faced eval verify`: it reads a list of image pairs labelled same or
// different person, and turns the similarity scores the pipeline gives them
// into the numbers face-verification papers report. It is pure Go (no cgo,
// no image decoding) so the protocol can be tested without models.
//
// # Pair files
//
// ParsePairs reads two formats, told apart by the first non-blank line:
//
//   - LFW pairs.txt: a header "folds n" (e.g. "10 300"), then for each fold n
//     same-person lines "name i j" followed by n different-person lines
//     "name1 i name2 j". Pair i of the file belongs to fold i/(2n). Image
//     paths follow the LFW layout Name/Name_0001.jpg (index zero-padded to 4
//     digits). The single-number header of pairsDevTrain.txt and
//     pairsDevTest.txt ("500") is one fold of n+n pairs.
//   - CSV with a header naming the columns file_x, file_y and Decision
//     (case-insensitive, any order, other columns ignored), Decision being
//     Yes or No, and file names relative to the images folder, as in
//     deepface's master.csv. CSV files carry no folds, so StratifiedFolds
//     assigns DefaultFolds of them.
//
// # Protocol
//
// A pair is declared "same person" when its score is >= the threshold;
// scores are similarities (higher means more alike, e.g. cosine).
//
// Accuracy is LFW's "unrestricted, labeled outside data" protocol: for each
// of the k folds the threshold is fitted (BestThreshold) on the other k-1
// folds and the accuracy measured on the held-out one, so no pair is ever
// classified by a threshold fitted on it. The report gives the mean and the
// sample standard deviation (divisor k-1, LFW's sigma-hat) of the k
// accuracies; LFW's standard error of the mean is that std / sqrt(k). Some
// published code (e.g. insightface) uses the population std instead, which
// is smaller by sqrt((k-1)/k).
//
// The global threshold is BestThreshold over all pairs: useful as a
// starting point for configuration, but its accuracy is optimistic because
// it was fitted on the pairs it is measured on.
//
// TAR at FAR 1e-3 is the fraction of genuine pairs accepted at the lowest
// threshold that accepts at most 0.1% of the impostor pairs. With N impostor
// pairs a FAR only has a resolution of 1/N: with fewer than 1000 of them
// (deepface's master.csv has 262) FAR 1e-3 means "no impostor accepted at
// all", and the threshold is just above the highest impostor score.
//
// AUC is the area under the ROC curve, computed exactly as the Mann–Whitney
// U statistic: the probability that a random genuine pair outscores a
// random impostor pair, ties counting one half.
package eval
