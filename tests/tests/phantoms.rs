//! Phantom data sets: deterministic, anatomically plausible, honest sparse
//! manifests, every task, and the importers on the layouts they write.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use edge_seg_models::card::Modality;
use edge_seg_models::labels::{Task, BASE_LABELS};
use edge_seg_tests::{run, text};
use edge_seg_trainer::data::dataset::Dataset;
use edge_seg_trainer::data::import::{import_msd, import_nnunet, ImportOptions};
use edge_seg_trainer::phantom::{generate, PhantomOptions};

fn options(out: &Path, cases: usize, seed: u64) -> PhantomOptions {
    PhantomOptions {
        out: out.to_path_buf(),
        cases,
        seed,
        modality: Modality::CT,
        task: None,
        sparse: false,
        complete_fraction: 0.1,
        label_all: false,
        structures: Vec::new(),
        val: 0,
        test: 0,
        inplane_mm: (3.0, 4.0),
        slice_mm: (3.0, 5.0),
        orientations: vec!["LPS".into(), "RAS".into(), "PLS".into()],
        dataset_id: 7,
        name: None,
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["imagesTr", "labelsTr"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            v.push(e.unwrap().path());
        }
    }
    v.sort();
    v
}

/// The same file names, with the same bytes, in the same order.
fn assert_same_files(a: &[PathBuf], b: &[PathBuf]) {
    let names = |f: &[PathBuf]| f.iter().map(|p| p.file_name().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b));
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
}

#[test]
fn same_seed_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ga = generate(&options(a.path(), 2, 9), |_, _| {}).unwrap();
    let gb = generate(&options(b.path(), 2, 9), |_, _| {}).unwrap();
    let fa = files(&ga.dir);
    let fb = files(&gb.dir);
    assert_eq!(fa.len(), 4);
    assert_same_files(&fa, &fb);
    let c = tempfile::tempdir().unwrap();
    let gc = generate(&options(c.path(), 2, 10), |_, _| {}).unwrap();
    assert_ne!(
        std::fs::read(&files(&gc.dir)[0]).unwrap(),
        std::fs::read(&fa[0]).unwrap()
    );
}

/// Cases render in parallel: the data set, manifest included, must not
/// depend on how many threads made it.
#[test]
fn thread_count_does_not_change_the_data_set() {
    let mut o = options(Path::new(""), 5, 3);
    o.sparse = true;
    o.val = 1;
    let generate_with = |threads: usize, out: &Path| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let o = PhantomOptions {
            out: out.to_path_buf(),
            ..o.clone()
        };
        pool.install(|| generate(&o, |_, _| {})).unwrap()
    };
    let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let g1 = generate_with(1, one.path());
    let g4 = generate_with(4, many.path());
    let (f1, f4) = (files(&g1.dir), files(&g4.dir));
    assert_eq!(f1.len(), 12);
    assert_same_files(&f1, &f4);
    assert_same_files(&[g1.manifest], &[g4.manifest]);
    assert_eq!(g1.voxels, g4.voxels);
}

#[test]
fn every_structure_is_present_with_plausible_hounsfield_units() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path(), 1, 21);
    o.inplane_mm = (1.5, 1.5);
    o.slice_mm = (2.5, 2.5);
    let g = generate(&o, |_, _| {}).unwrap();
    let ds = Dataset::load(&g.manifest).unwrap();
    let (img, labels) = ds.read_case(&ds.manifest.cases[0]).unwrap();
    let labels = labels.unwrap();
    // (label, lowest plausible mean HU, highest)
    let ranges: [(&str, f64, f64); 13] = [
        ("liver", 60.0, 140.0),
        ("spleen", 80.0, 160.0),
        ("kidneys", 90.0, 230.0),
        ("gallbladder", -20.0, 50.0),
        ("stomach", -950.0, 100.0),
        ("pancreas", 40.0, 130.0),
        ("aorta", 120.0, 330.0),
        ("inferior_vena_cava", 90.0, 200.0),
        ("lung_left", -950.0, -650.0),
        ("lung_right", -950.0, -650.0),
        ("heart", 80.0, 230.0),
        ("trachea", -1000.0, -300.0),
        ("urinary_bladder", -20.0, 50.0),
    ];
    for (name, lo, hi) in ranges {
        let idx = BASE_LABELS.iter().position(|l| *l == name).unwrap() as u16;
        let vals: Vec<f64> = img
            .data
            .iter()
            .zip(labels.iter())
            .filter(|(_, &l)| l == idx)
            .map(|(&v, _)| v as f64)
            .collect();
        assert!(vals.len() > 20, "{name}: only {} voxels", vals.len());
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        assert!(
            (lo..=hi).contains(&mean),
            "{name}: mean {mean:.0} HU outside [{lo}, {hi}]"
        );
    }
    // Air outside, bone present (vertebrae, ribs, pelvis are not labelled).
    let bright = img
        .data
        .iter()
        .zip(labels.iter())
        .filter(|(&v, &l)| v > 500.0 && l == 0)
        .count();
    assert!(bright > 200, "bones: {bright} voxels above 500 HU");
    assert!(img.data.iter().filter(|&&v| v < -900.0).count() > img.data.len() / 10);
}

#[test]
fn sparse_manifests_list_exactly_the_labels_present() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path(), 8, 4);
    o.sparse = true;
    o.complete_fraction = 0.25;
    o.val = 1;
    let g = generate(&o, |_, _| {}).unwrap();
    let ds = Dataset::load(&g.manifest).unwrap();
    let m = &ds.manifest;
    assert!(m.sources.contains_key("kidney_ct"));
    let kidney = &m.sources["kidney_ct"];
    assert_eq!(kidney.labels.get("1").map(String::as_str), Some("kidneys"));
    assert_eq!(kidney.labels.get("2").map(String::as_str), Some("kidneys"));
    let mut sources = BTreeSet::new();
    for case in &m.cases {
        sources.insert(case.source.clone());
        let (_, labels) = ds.read_case(case).unwrap();
        let present: BTreeSet<String> = labels
            .unwrap()
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| m.vocabulary[l as usize].clone())
            .collect();
        let listed: BTreeSet<String> = case.annotated.iter().cloned().collect();
        assert_eq!(present, listed, "case {} ({})", case.id, case.source);
        if case.split != edge_seg_models::manifest::Split::Train {
            assert_eq!(case.source, "complete");
        }
    }
    assert!(sources.len() >= 3, "{sources:?}");
}

/// The sparse set labelled completely keeps the sparse set's images (each
/// case's source and field of view) and labels every structure, agreeing
/// with what the sources annotated; a structure subset keeps exactly those
/// structures' voxels.
#[test]
fn a_sparse_set_labelled_completely_or_for_fewer_structures_keeps_its_images() {
    let mut o = options(Path::new(""), 6, 4);
    o.sparse = true;
    o.complete_fraction = 0.25;
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let five: Vec<String> = ["stomach", "liver", "spleen", "kidneys", "aorta"]
        .map(String::from)
        .to_vec();
    let variants = [
        PhantomOptions {
            out: dirs[0].path().to_path_buf(),
            ..o.clone()
        },
        PhantomOptions {
            out: dirs[1].path().to_path_buf(),
            label_all: true,
            ..o.clone()
        },
        PhantomOptions {
            out: dirs[2].path().to_path_buf(),
            label_all: true,
            structures: five.clone(),
            ..o.clone()
        },
    ];
    let [sparse, all, subset] = variants.map(|v| Dataset::load(&generate(&v, |_, _| {}).unwrap().manifest).unwrap());
    assert_eq!(all.manifest.vocabulary, BASE_LABELS.map(String::from).to_vec());
    assert_eq!(
        subset.manifest.vocabulary,
        ["background", "liver", "spleen", "kidneys", "stomach", "aorta"]
            .map(String::from)
            .to_vec()
    );
    assert_eq!(all.manifest.sources.keys().collect::<Vec<_>>(), ["complete"]);
    let mut partial = 0;
    for ((s, a), f) in sparse
        .manifest
        .cases
        .iter()
        .zip(&all.manifest.cases)
        .zip(&subset.manifest.cases)
    {
        let (s_img, s_lab) = sparse.read_case(s).unwrap();
        let (a_img, a_lab) = all.read_case(a).unwrap();
        let (f_img, f_lab) = subset.read_case(f).unwrap();
        assert_eq!(s_img.data, a_img.data, "case {}: images differ", s.id);
        assert_eq!(s_img.data, f_img.data, "case {}: images differ", s.id);
        let (s_lab, a_lab, f_lab) = (s_lab.unwrap(), a_lab.unwrap(), f_lab.unwrap());
        assert_eq!(a.source, "complete");
        if s.source != "complete" {
            partial += 1;
            assert!(a.annotated.len() > s.annotated.len(), "case {}", s.id);
        }
        for ((&sl, &al), &fl) in s_lab.iter().zip(a_lab.iter()).zip(f_lab.iter()) {
            if sl > 0 {
                assert_eq!(sl, al, "case {} ({}): a source's label changed", s.id, s.source);
            }
            let kept = &all.manifest.vocabulary[al as usize];
            let expected = subset.manifest.vocabulary.iter().position(|n| n == kept).unwrap_or(0);
            assert_eq!(fl as usize, expected, "case {}: {kept} in the subset", s.id);
        }
        let present: BTreeSet<&String> = f.annotated.iter().collect();
        assert!(present.iter().all(|n| five.contains(n)), "{present:?}");
    }
    assert!(partial >= 2, "only {partial} cases came from sparse sources");
    let refused = |o: PhantomOptions, needle: &str| {
        let e = generate(&o, |_, _| {}).err().expect("refused").to_string();
        assert!(e.contains(needle), "{e}");
    };
    let out = dirs[0].path().join("refused");
    refused(
        PhantomOptions {
            out: out.clone(),
            structures: vec!["liver".into(), "femur".into()],
            ..options(&out, 1, 1)
        },
        "\"femur\" is not a base structure",
    );
    refused(
        PhantomOptions {
            structures: vec!["liver".into()],
            ..o.clone()
        },
        "needs --label-all",
    );
    refused(
        PhantomOptions {
            label_all: true,
            ..options(&out, 1, 1)
        },
        "--label-all applies to a sparse base set",
    );
}

#[test]
fn every_task_generates_its_labels() {
    for task in Task::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path(), 1, 5);
        o.task = Some(task);
        o.modality = if task == Task::Prostate {
            Modality::MR
        } else {
            Modality::CT
        };
        let g = generate(&o, |_, _| {}).unwrap();
        let ds = Dataset::load(&g.manifest).unwrap();
        assert_eq!(ds.manifest.vocabulary, task.labels());
        let case = &ds.manifest.cases[0];
        let (img, labels) = ds.read_case(case).unwrap();
        let labels = labels.unwrap();
        for (i, name) in task.labels().iter().enumerate().skip(1) {
            let n = labels.iter().filter(|&&l| l as usize == i).count();
            assert!(n > 0, "{}: {name} missing", task.name());
        }
        if task == Task::Prostate {
            assert_eq!(case.modality, Modality::MR);
            assert!(img.data.iter().all(|&v| v >= 0.0), "MR magnitudes are non-negative");
        }
    }
}

#[test]
fn importers_round_trip_nnunet_and_msd_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&options(dir.path(), 3, 8), |_, _| {}).unwrap();
    let ours = Dataset::load(&g.manifest).unwrap().manifest;
    // nnU-Net v2: the generator writes that layout.
    let imported = import_nnunet(&g.dir, &ImportOptions { val_every: 0 }).unwrap();
    assert_eq!(imported.vocabulary, ours.vocabulary);
    assert_eq!(imported.cases.len(), 3);
    for (a, b) in imported.cases.iter().zip(&ours.cases) {
        assert_eq!(a.image, b.image);
        assert_eq!(a.label, b.label);
        assert_eq!(a.annotated.len(), BASE_LABELS.len() - 1);
    }
    let path = g.dir.join("imported.json");
    std::fs::write(&path, imported.to_json_pretty()).unwrap();
    let ds = Dataset::load(&path).unwrap();
    let (_, labels) = ds.read_case(&ds.manifest.cases[0]).unwrap();
    let (_, ours_labels) = Dataset::load(&g.manifest).unwrap().read_case(&ours.cases[0]).unwrap();
    assert_eq!(labels, ours_labels);
    // MSD: a dataset.json with a "training" list.
    let msd = dir.path().join("Task09_Phantom");
    std::fs::create_dir_all(&msd).unwrap();
    let training: Vec<serde_json::Value> = ours
        .cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "image": format!("./{}", g.dir.join(&c.image).display()),
                "label": format!("./{}", g.dir.join(c.label.as_ref().unwrap()).display()),
            })
        })
        .collect();
    let labels: serde_json::Map<String, serde_json::Value> = BASE_LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), serde_json::json!(l)))
        .collect();
    let json = serde_json::json!({"name": "Phantom", "modality": {"0": "CT"}, "labels": labels, "training": training, "test": []});
    std::fs::write(msd.join("dataset.json"), serde_json::to_string(&json).unwrap()).unwrap();
    // Paths in this dataset.json are absolute (after "./"), as the test wrote them.
    let m = import_msd(&msd, &ImportOptions { val_every: 2 }).unwrap();
    assert_eq!(m.vocabulary, ours.vocabulary);
    assert_eq!(m.cases.len(), 3);
    assert_eq!(
        m.cases
            .iter()
            .filter(|c| c.split == edge_seg_models::manifest::Split::Val)
            .count(),
        1
    );
    // Refusals: multi-channel and region-based labels.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(bad.join("imagesTr")).unwrap();
    std::fs::write(
        bad.join("dataset.json"),
        r#"{"channel_names": {"0": "T2", "1": "ADC"}, "labels": {"background": 0, "a": 1}, "file_ending": ".nii.gz"}"#,
    )
    .unwrap();
    let e = import_nnunet(&bad, &ImportOptions { val_every: 0 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 input channels"), "{e}");
    std::fs::write(
        bad.join("dataset.json"),
        r#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": [1, 2]}, "file_ending": ".nii.gz"}"#,
    )
    .unwrap();
    let e = import_nnunet(&bad, &ImportOptions { val_every: 0 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("region-based"), "{e}");
}

#[test]
fn cli_writes_a_preview_and_reports_speed() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("preview.png");
    let o = run(
        "edge-seg-train",
        &[
            "phantoms",
            "--out",
            dir.path().to_str().unwrap(),
            "--cases",
            "2",
            "--seed",
            "1",
            "--sparse",
            "--inplane-mm",
            "4-5",
            "--slice-mm",
            "4-5",
            "--preview",
            png.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("cases/s"));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let bad = run(
        "edge-seg-train",
        &["phantoms", "--out", dir.path().to_str().unwrap(), "--task", "spleen"],
    );
    assert!(!bad.status.success());
    assert!(text(&bad).contains("unknown --task"));
}
