// Package witness has each tapproof log checked by independent witnesses,
// so that a regulator need not trust the utility to show everyone the same
// history.
//
// A witness (C2SP tlog-witness, https://c2sp.org/tlog-witness) keeps the
// latest checkpoint it has seen of each log it follows, and cosigns a newer
// one (C2SP tlog-cosignature, https://c2sp.org/tlog-cosignature) only once
// a consistency proof shows that the newer tree extends the one it holds. A
// utility that rebuilds its log without two inconvenient samples gets no
// witness to cosign the rebuilt history, and a checkpoint without the
// cosignatures a regulator's policy asks for is refused.
//
// Submitter sends each new checkpoint to the witnesses of a Policy with the
// consistency proof from each witness's last size, learns a witness's size
// from its 409 answer, and returns the checkpoint with the cosignatures that
// verify. Policy checks a checkpoint's cosignatures against a witness policy
// in the format github.com/transparency-dev/formats/witness parses (that of
// Sigsum, with C2SP vkeys), and names the witnesses that are missing.
//
// Of tapproof's own packages, witness imports none: the log's consistency
// proofs reach it through the Prover interface (anchor.Log implements it).
package witness
