//! The shipped models and sample scans are exactly the files recorded in
//! `models/zoo/SHA256SUMS`, and every shipped model's weights match the hash
//! in its card.

use std::collections::BTreeSet;

use edge_seg_runtime::model::Model;
use edge_seg_tests::tests_dir;
use sha2::{Digest, Sha256};

#[test]
fn zoo_files_match_their_recorded_hashes() {
    let zoo = tests_dir().parent().unwrap().join("models/zoo");
    let sums = std::fs::read_to_string(zoo.join("SHA256SUMS")).unwrap();
    let mut listed = BTreeSet::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line
            .split_once("  ")
            .expect("`HASH  NAME` lines, as sha256sum writes them");
        let bytes = std::fs::read(zoo.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = hex::encode(Sha256::digest(&bytes));
        assert_eq!(got, hash, "{name} does not match SHA256SUMS");
        listed.insert(name.to_string());
    }
    for e in std::fs::read_dir(&zoo).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name != "SHA256SUMS" {
            assert!(listed.contains(&name), "{name} is in models/zoo but not in SHA256SUMS");
        }
    }
    for name in listed.iter().filter(|n| n.ends_with(".onnx")) {
        let m = Model::from_file(&zoo.join(name), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.card.weights_sha256.len(), 64);
    }
}
