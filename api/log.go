package api

// The verifiable log's answers. Hashes are SHA-256, standard base64.

// Proof is GET /events/{id}/proof: the inclusion proof of the event's
// leaf in the tree of TreeSize events, and the signed checkpoint of that
// tree.
type Proof struct {
	ID         string   `json:"id"`
	Seq        int64    `json:"seq"`
	LeafHash   []byte   `json:"leaf_hash"`
	TreeSize   int64    `json:"tree_size"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

// Consistency is GET /log/consistency: the proof that the tree of From
// events is a prefix of the tree of To events.
type Consistency struct {
	From  int64    `json:"from"`
	To    int64    `json:"to"`
	Proof [][]byte `json:"proof"`
}

// Leaves is GET /log/leaves: the leaf hashes of seq From to To
// (exclusive), as the store keeps them.
type Leaves struct {
	From       int64    `json:"from"`
	To         int64    `json:"to"`
	LeafHashes [][]byte `json:"leaf_hashes"`
}

// Checkpoints is GET /log/checkpoints: signed checkpoints by size.
type Checkpoints struct {
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// Checkpoint is one signed checkpoint.
type Checkpoint struct {
	Size       int64  `json:"size"`
	Checkpoint string `json:"checkpoint"`
	CreatedAt  string `json:"created_at"`
}

// RedactRequest is the body of POST /events/{id}/redact.
type RedactRequest struct {
	Reason string `json:"reason"`
}

// ExportTrailer is the last line of an NDJSON export: how many events it
// holds and the last one's seq, so a reader can tell a complete export
// from one cut off.
type ExportTrailer struct {
	Trailer struct {
		Count   int64  `json:"count"`
		LastSeq *int64 `json:"last_seq,omitempty"`
	} `json:"trailer"`
}
