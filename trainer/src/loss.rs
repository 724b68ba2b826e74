//! Losses for sparse labels: each a soft-Dice term plus a cross-entropy
//! term, computed per image from which classes that image annotates.
//!
//! - `naive`: every unlabelled voxel is background, every class annotated;
//! - `masked` (the paper's hybrid masked loss as DESIGN.md reads it): Dice
//!   averages over the image's annotated foreground classes; cross-entropy
//!   counts voxels labelled with an annotated class, plus background voxels
//!   only when the image is complete;
//! - `marginal` (Shi et al. 2021): background and the unannotated classes
//!   merge into one "negative" class with the sum of their probabilities;
//!   cross-entropy and Dice run over {negative} ∪ annotated.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Smoothing of the soft Dice (in voxels).
pub const DICE_SMOOTH: f32 = 1.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    Naive,
    Masked,
    Marginal,
}

impl LossKind {
    pub fn parse(s: &str) -> Option<LossKind> {
        match s {
            "naive" => Some(LossKind::Naive),
            "masked" => Some(LossKind::Masked),
            "marginal" => Some(LossKind::Marginal),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LossKind::Naive => "naive",
            LossKind::Masked => "masked",
            LossKind::Marginal => "marginal",
        }
    }
}

/// Relative weights of the two terms, and which classes the Dice term
/// averages over.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossWeights {
    pub dice: f32,
    pub ce: f32,
    /// Average the Dice term only over annotated classes that occur in the
    /// patch. By default an annotated class absent from the patch counts
    /// too, with soft Dice 1 / (1 + Σp): it pushes that class's probability
    /// towards zero in every voxel of the patch.
    #[serde(default)]
    pub dice_present_only: bool,
    /// Exponent of the cross-entropy's class weights (see
    /// [`balanced_class_weights`]); 0 weighs every voxel alike.
    #[serde(default)]
    pub class_balance: f32,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            dice: 1.0,
            ce: 1.0,
            dice_present_only: false,
            class_balance: 0.0,
        }
    }
}

/// Cross-entropy weight per class from how much of the training data each
/// class fills: `labelled[k]` voxels of class k in the cases that annotate
/// k, out of `total[k]` voxels in those cases. Foreground class k weighs
/// `(s_max / s_k)^power`, with `s_k = labelled[k] / total[k]` and `s_max`
/// the largest share of any foreground class, so the largest class weighs 1
/// and a class 50 times smaller weighs 50^power. Background (index 0), and
/// classes no case labels, weigh 1.
pub fn balanced_class_weights(labelled: &[u64], total: &[u64], power: f32) -> Vec<f32> {
    let share: Vec<Option<f64>> = labelled
        .iter()
        .zip(total)
        .enumerate()
        .map(|(k, (&l, &t))| (k > 0 && l > 0 && t > 0).then(|| l as f64 / t as f64))
        .collect();
    let max = share.iter().flatten().cloned().fold(0.0f64, f64::max);
    share
        .iter()
        .map(|s| match s {
            Some(s) if power != 0.0 => (max / s).powf(power as f64) as f32,
            _ => 1.0,
        })
        .collect()
}

/// Labels of a batch and what each image annotates.
#[derive(Clone, Debug)]
pub struct BatchLabels {
    /// `[B, d, h, w]` flattened vocabulary indices.
    pub labels: Vec<u8>,
    pub spatial: [usize; 3],
    /// Per image: annotated foreground classes.
    pub annotated: Vec<Vec<usize>>,
    /// Per image: every foreground class annotated.
    pub complete: Vec<bool>,
    pub classes: usize,
    /// Cross-entropy weight of a voxel by its (annotated) class; empty: 1
    /// for every class. Voxels of the merged negative class weigh 1.
    pub class_weights: Vec<f32>,
}

impl BatchLabels {
    /// The labels of images `range` of the batch.
    pub fn images(&self, range: std::ops::Range<usize>) -> BatchLabels {
        let v: usize = self.spatial.iter().product();
        BatchLabels {
            labels: self.labels[range.start * v..range.end * v].to_vec(),
            spatial: self.spatial,
            annotated: self.annotated[range.clone()].to_vec(),
            complete: self.complete[range].to_vec(),
            classes: self.classes,
            class_weights: self.class_weights.clone(),
        }
    }

    fn class_weight(&self, k: usize) -> f32 {
        self.class_weights.get(k).copied().unwrap_or(1.0)
    }
}

/// The loss and its two terms (scalars), with what each term was divided
/// by, so that terms computed on parts of a batch (on several devices) can
/// be put back together into the whole batch's ([`Denominators::scales`]).
pub struct LossParts {
    pub total: Tensor<1>,
    pub dice: Tensor<1>,
    pub ce: Tensor<1>,
    pub dice_den: Denominator,
    pub ce_den: Denominator,
}

/// A term's divisor: the count it averages over (images, or summed voxel
/// weights) and the value divided by (the count, kept away from zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Denominator {
    pub count: f32,
    pub used: f32,
}

impl Denominator {
    fn images(count: usize) -> Denominator {
        Denominator {
            count: count as f32,
            used: count.max(1) as f32,
        }
    }

    fn weights(sum: f32) -> Denominator {
        Denominator {
            count: sum,
            used: sum.max(f32::MIN_POSITIVE),
        }
    }

    /// For each part of a batch, the factor that turns its term (a sum
    /// over the part divided by the part's own divisor) into its share of
    /// the whole batch's term (the same sum divided by the whole batch's
    /// divisor): the parts' rescaled terms add up to the whole batch's.
    pub fn scales(parts: &[Denominator], whole: Denominator) -> Vec<f32> {
        parts.iter().map(|p| p.used / whole.used).collect()
    }

    /// The divisor of a batch made of `parts`.
    pub fn whole(parts: &[Denominator], of_images: bool) -> Denominator {
        let count: f32 = parts.iter().map(|p| p.count).sum();
        if of_images {
            Denominator {
                count,
                used: count.max(1.0),
            }
        } else {
            Denominator::weights(count)
        }
    }
}

fn tensor5(values: Vec<f32>, shape: [usize; 5], device: &Device) -> Tensor<5> {
    Tensor::<5>::from_data(TensorData::new(values, shape), device)
}

/// Compute the loss of `kind` for `logits` `[B, C, d, h, w]`.
pub fn loss(kind: LossKind, logits: Tensor<5>, t: &BatchLabels, w: LossWeights) -> LossParts {
    let device = logits.device();
    let [b, c, d, h, wd] = logits.dims();
    assert_eq!(c, t.classes, "classes");
    assert_eq!([d, h, wd], t.spatial, "spatial size");
    let v = d * h * wd;
    // Per image: which classes count as annotated foreground.
    let annotated: Vec<Vec<bool>> = (0..b)
        .map(|i| {
            let mut a = vec![false; c];
            match kind {
                LossKind::Naive => a.iter_mut().skip(1).for_each(|x| *x = true),
                _ => t.annotated[i]
                    .iter()
                    .filter(|&&k| k > 0 && k < c)
                    .for_each(|&k| a[k] = true),
            }
            a
        })
        .collect();
    let complete: Vec<bool> = (0..b).map(|i| kind == LossKind::Naive || t.complete[i]).collect();

    // Labels outside the vocabulary count as background, in every term.
    let labels: Vec<usize> = t
        .labels
        .iter()
        .map(|&l| if (l as usize) < c { l as usize } else { 0 })
        .collect();
    // Per-class voxel counts on the host (the Dice term's targets, and which
    // classes occur); the one-hot targets on the device, from the labels.
    let mut ysum = vec![0f32; b * c];
    for i in 0..b {
        for n in 0..v {
            ysum[i * c + labels[i * v + n]] += 1.0;
        }
    }
    let labels_t = tensor5(labels.iter().map(|&l| l as f32).collect(), [b, 1, d, h, wd], &device);
    let classes = Tensor::<1, Int>::arange(0..c as i64, &device)
        .float()
        .reshape([1, c, 1, 1, 1]);
    let full = [b, c, d, h, wd];
    let y = labels_t.expand(full).equal(classes.expand(full)).float();
    let logp = log_softmax(logits, 1);
    let p = logp.clone().exp();
    let inter = (p.clone() * y.clone()).sum_dims(&[2, 3, 4]).reshape([b, c]);
    let psum = p.clone().sum_dims(&[2, 3, 4]).reshape([b, c]);
    // Per image: which classes the Dice term averages over.
    let in_dice: Vec<Vec<bool>> = (0..b)
        .map(|i| {
            (0..c)
                .map(|k| annotated[i][k] && (!w.dice_present_only || ysum[i * c + k] > 0.0))
                .collect()
        })
        .collect();

    match kind {
        LossKind::Naive | LossKind::Masked => {
            // Dice: mean over annotated foreground classes, then over images.
            let mut wdice = vec![0f32; b * c];
            let mut images = 0usize;
            for i in 0..b {
                let n = in_dice[i].iter().filter(|&&d| d).count();
                if n > 0 {
                    images += 1;
                    for k in 0..c {
                        if in_dice[i][k] {
                            wdice[i * c + k] = 1.0 / n as f32;
                        }
                    }
                }
            }
            // CE over voxels of annotated classes (+ background when complete),
            // each weighted by its class; the mean is over the weights. A
            // voxel's weight is its image's entry for its label.
            let counted = |i: usize, l: usize| if l == 0 { complete[i] } else { annotated[i][l] };
            let mut by_label = vec![0f32; b * c];
            for i in 0..b {
                for k in 0..c {
                    if counted(i, k) {
                        by_label[i * c + k] = t.class_weight(k);
                    }
                }
            }
            let mut weight_sum = 0f32;
            for i in 0..b {
                for n in 0..v {
                    weight_sum += by_label[i * c + labels[i * v + n]];
                }
            }
            let [ysum_t, wdice, by_label] = upload([&ysum, &wdice, &by_label], &device);
            let dice_c = dice_per_class(inter, psum, ysum_t.reshape([b, c]));
            let dice_den = Denominator::images(images);
            let dice = ((dice_c.neg() + 1.0) * wdice.reshape([b, c])).sum() / dice_den.used;
            let weight = (y.clone() * by_label.reshape([b, c, 1, 1, 1])).sum_dim(1);
            let vox = (logp * y).sum_dim(1).neg();
            let ce_den = Denominator::weights(weight_sum);
            let ce = (vox * weight).sum() / ce_den.used;
            LossParts {
                total: dice.clone() * w.dice + ce.clone() * w.ce,
                dice,
                ce,
                dice_den,
                ce_den,
            }
        }
        LossKind::Marginal => {
            // U[b, k] = 1 for classes merged into "negative"; the
            // cross-entropy weight of a voxel by its label: its annotated
            // class's, or background's for the negative class.
            let mut merged = vec![0f32; b * c];
            let mut by_label = vec![0f32; b * c];
            for i in 0..b {
                for k in 0..c {
                    // Background is never in `annotated`.
                    if !annotated[i][k] {
                        merged[i * c + k] = 1.0;
                        by_label[i * c + k] = t.class_weight(0);
                    } else {
                        by_label[i * c + k] = t.class_weight(k);
                    }
                }
            }
            // Negative target: voxels not labelled with an annotated class.
            let mut yneg_sum = vec![0f32; b];
            let mut wsum = 0f32;
            for i in 0..b {
                for n in 0..v {
                    let l = labels[i * v + n];
                    yneg_sum[i] += merged[i * c + l];
                    wsum += by_label[i * c + l];
                }
            }
            let mut wdice = vec![0f32; b * c];
            let mut wneg = vec![0f32; b];
            for i in 0..b {
                let n = in_dice[i].iter().filter(|&&d| d).count() + 1;
                wneg[i] = 1.0 / n as f32;
                for k in 0..c {
                    if in_dice[i][k] {
                        wdice[i * c + k] = 1.0 / n as f32;
                    }
                }
            }
            let [ysum_t, u, by_label, yneg_t, wdice, wneg] =
                upload([&ysum, &merged, &by_label, &yneg_sum, &wdice, &wneg], &device);
            let dice_c = dice_per_class(inter, psum, ysum_t.reshape([b, c]));
            let u = u.reshape([b, c, 1, 1, 1]);
            let p_neg = (p.clone() * u.clone()).sum_dim(1); // [B, 1, ...]
            let logp_neg = p_neg.clone().clamp_min(1e-7).log();
            let yneg = (y.clone() * u.clone()).sum_dim(1);
            let wvox = (y.clone() * by_label.reshape([b, c, 1, 1, 1])).sum_dim(1);
            let keep = u.neg() + 1.0; // annotated classes
            let vox = ((logp * y * keep).sum_dim(1) + logp_neg * yneg.clone()).neg();
            let ce_den = Denominator::weights(wsum);
            let ce = (vox * wvox).sum() / ce_den.used;
            // Dice over annotated classes plus the negative class.
            let inter_neg = (p_neg.clone() * yneg).sum_dims(&[1, 2, 3, 4]).reshape([b, 1]);
            let psum_neg = p_neg.sum_dims(&[1, 2, 3, 4]).reshape([b, 1]);
            let dice_neg = dice_per_class(inter_neg, psum_neg, yneg_t.reshape([b, 1]));
            let dice_den = Denominator::images(b);
            let dice = (((dice_c.neg() + 1.0) * wdice.reshape([b, c])).sum()
                + ((dice_neg.neg() + 1.0) * wneg.reshape([b, 1])).sum())
                / dice_den.used;
            LossParts {
                total: dice.clone() * w.dice + ce.clone() * w.ce,
                dice,
                ce,
                dice_den,
                ce_den,
            }
        }
    }
}

/// Soft Dice per image and class from the overlap, the predicted and the
/// target volumes.
fn dice_per_class(inter: Tensor<2>, psum: Tensor<2>, ysum: Tensor<2>) -> Tensor<2> {
    (inter * 2.0 + DICE_SMOOTH) / (psum + ysum + DICE_SMOOTH)
}

/// Host-built vectors on the device in one upload (each upload from host
/// memory waits for the device), returned as views of it.
fn upload<const N: usize>(parts: [&[f32]; N], device: &Device) -> [Tensor<1>; N] {
    let joined: Vec<f32> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let n = joined.len();
    let all = Tensor::<1>::from_data(TensorData::new(joined, [n]), device);
    let mut offset = 0;
    parts.map(|p| {
        let t = all.clone().narrow(0, offset, p.len());
        offset += p.len();
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    /// Logits for B=1, C=3, two voxels along x, from per-voxel probabilities.
    fn logits_from_probs(p: [[f32; 3]; 2]) -> Tensor<5> {
        let mut v = vec![0f32; 6];
        for (n, probs) in p.iter().enumerate() {
            for (k, &pk) in probs.iter().enumerate() {
                v[k * 2 + n] = pk.ln();
            }
        }
        tensor5(v, [1, 3, 1, 1, 2], &dev())
    }

    fn labels(l: [u8; 2], annotated: Vec<usize>, complete: bool) -> BatchLabels {
        BatchLabels {
            labels: l.to_vec(),
            spatial: [1, 1, 2],
            annotated: vec![annotated],
            complete: vec![complete],
            classes: 3,
            class_weights: Vec::new(),
        }
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn masked_loss_by_hand() {
        // voxel 0 labelled 1 (annotated), voxel 1 unlabelled; only class 1 annotated.
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let t = labels([1, 0], vec![1], false);
        let parts = loss(LossKind::Masked, logits_from_probs(p), &t, LossWeights::default());
        // Dice over class 1: inter 0.7, psum 0.8, ysum 1.
        let dice = 1.0 - (2.0 * 0.7 + 1.0) / (0.8 + 1.0 + 1.0);
        // CE over voxel 0 only.
        let ce = -(0.7f32).ln();
        close(scalar(parts.dice), dice);
        close(scalar(parts.ce), ce);
        close(scalar(parts.total), dice + ce);
    }

    #[test]
    fn present_only_dice_skips_absent_annotated_classes() {
        // Classes 1 and 2 annotated, only class 1 occurs in the patch.
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let t = labels([1, 0], vec![1, 2], false);
        let both = loss(LossKind::Masked, logits_from_probs(p), &t, LossWeights::default());
        let present = LossWeights {
            dice_present_only: true,
            ..LossWeights::default()
        };
        let one = loss(LossKind::Masked, logits_from_probs(p), &t, present);
        let d1 = 1.0 - (2.0 * 0.7 + 1.0) / (0.8 + 1.0 + 1.0);
        let d2 = 1.0 - 1.0 / (0.5 + 0.0 + 1.0);
        close(scalar(both.dice), (d1 + d2) / 2.0);
        close(scalar(one.dice), d1);
        // Nothing annotated is present: no Dice term, no division by zero.
        let none = labels([0, 0], vec![1, 2], false);
        let parts = loss(LossKind::Masked, logits_from_probs(p), &none, present);
        close(scalar(parts.dice), 0.0);
        assert!(scalar(parts.total).is_finite());
    }

    #[test]
    fn naive_loss_by_hand() {
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let t = labels([1, 0], vec![1], false);
        let parts = loss(LossKind::Naive, logits_from_probs(p), &t, LossWeights::default());
        // Dice over classes 1 and 2; class 2 absent: ysum 0.
        let d1 = 1.0 - (2.0 * 0.7 + 1.0) / (0.8 + 1.0 + 1.0);
        let d2 = 1.0 - 1.0 / (0.5 + 0.0 + 1.0);
        close(scalar(parts.dice), (d1 + d2) / 2.0);
        // CE over both voxels, voxel 1 as background.
        close(scalar(parts.ce), -((0.7f32).ln() + (0.5f32).ln()) / 2.0);
    }

    #[test]
    fn marginal_loss_by_hand() {
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let t = labels([1, 0], vec![1], false);
        let parts = loss(LossKind::Marginal, logits_from_probs(p), &t, LossWeights::default());
        // negative = background + class 2: p_neg = [0.3, 0.9]; y_neg = [0, 1].
        let ce = -((0.7f32).ln() + (0.9f32).ln()) / 2.0;
        close(scalar(parts.ce), ce);
        let d1 = 1.0 - (2.0 * 0.7 + 1.0) / (0.8 + 1.0 + 1.0);
        let dneg = 1.0 - (2.0 * 0.9 + 1.0) / (1.2 + 1.0 + 1.0);
        close(scalar(parts.dice), (d1 + dneg) / 2.0);
    }

    #[test]
    fn marginal_present_only_dice_skips_absent_annotated_classes() {
        // Classes 1 and 2 annotated, only class 1 occurs in the patch: the
        // absent class 2 leaves the Dice term (which then averages class 1
        // and the negative class) but still competes in the cross-entropy.
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let t = labels([1, 0], vec![1, 2], false);
        let present = LossWeights {
            dice_present_only: true,
            ..LossWeights::default()
        };
        let all = loss(LossKind::Marginal, logits_from_probs(p), &t, LossWeights::default());
        let parts = loss(LossKind::Marginal, logits_from_probs(p), &t, present);
        // negative = background only: p_neg = [0.2, 0.5]; y_neg = [0, 1].
        let d1 = 1.0 - (2.0 * 0.7 + 1.0) / (0.8 + 1.0 + 1.0);
        let d2 = 1.0 - 1.0 / (0.5 + 1.0);
        let dneg = 1.0 - (2.0 * 0.5 + 1.0) / (0.7 + 1.0 + 1.0);
        close(scalar(all.dice), (d1 + d2 + dneg) / 3.0);
        close(scalar(parts.dice), (d1 + dneg) / 2.0);
        let ce = -((0.7f32).ln() + (0.5f32).ln()) / 2.0;
        close(scalar(all.ce), ce);
        close(scalar(parts.ce), ce);
    }

    #[test]
    fn unannotated_prediction_on_background_costs_nothing_unless_naive() {
        // Voxel 1 is unlabelled; class 2 is not annotated. Predicting class 2
        // there (instead of background) with the same p(class 1).
        let as_background = [[0.2, 0.7, 0.1], [0.85, 0.05, 0.1]];
        let as_class2 = [[0.2, 0.7, 0.1], [0.1, 0.05, 0.85]];
        let t = labels([1, 0], vec![1], false);
        for kind in [LossKind::Masked, LossKind::Marginal, LossKind::Naive] {
            let a = scalar(loss(kind, logits_from_probs(as_background), &t, LossWeights::default()).total);
            let b = scalar(loss(kind, logits_from_probs(as_class2), &t, LossWeights::default()).total);
            if kind == LossKind::Naive {
                assert!(b > a + 0.1, "naive must penalise: {a} vs {b}");
            } else {
                assert!((a - b).abs() < 1e-5, "{kind:?} must not penalise: {a} vs {b}");
            }
        }
    }

    #[test]
    fn class_weights_follow_the_share_of_annotating_cases() {
        // Class 1 fills 40 % of the cases that annotate it, class 2 10 %,
        // class 3 is never labelled.
        let w = balanced_class_weights(&[900, 400, 50, 0], &[1000, 1000, 500, 0], 0.5);
        close(w[0], 1.0);
        close(w[1], 1.0);
        close(w[2], 2.0);
        close(w[3], 1.0);
        assert!(balanced_class_weights(&[900, 400, 50], &[1000, 1000, 500], 0.0)
            .iter()
            .all(|&x| x == 1.0));
    }

    #[test]
    fn weighted_cross_entropy_by_hand() {
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let w = vec![1.0, 3.0, 1.0];
        // masked, complete: voxel 0 (class 1) weighs 3, voxel 1 (background) 1.
        let mut t = labels([1, 0], vec![1, 2], true);
        t.class_weights = w.clone();
        let parts = loss(LossKind::Masked, logits_from_probs(p), &t, LossWeights::default());
        close(scalar(parts.ce), -(3.0 * (0.7f32).ln() + (0.5f32).ln()) / 4.0);
        // marginal, class 2 unannotated: voxel 1's negative p = 0.5 + 0.4.
        let mut t = labels([1, 0], vec![1], false);
        t.class_weights = w;
        let parts = loss(LossKind::Marginal, logits_from_probs(p), &t, LossWeights::default());
        close(scalar(parts.ce), -(3.0 * (0.7f32).ln() + (0.9f32).ln()) / 4.0);
        // The Dice term does not change.
        let d1 = 1.0 - (2.0 * 0.7 + 1.0) / (0.8 + 1.0 + 1.0);
        let dneg = 1.0 - (2.0 * 0.9 + 1.0) / (1.2 + 1.0 + 1.0);
        close(scalar(parts.dice), (d1 + dneg) / 2.0);
    }

    #[test]
    fn complete_images_supervise_background() {
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        let t = labels([1, 0], vec![1, 2], true);
        let parts = loss(LossKind::Masked, logits_from_probs(p), &t, LossWeights::default());
        close(scalar(parts.ce), -((0.7f32).ln() + (0.5f32).ln()) / 2.0);
    }

    #[test]
    fn labels_outside_the_vocabulary_count_as_background() {
        let p = [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]];
        for kind in [LossKind::Naive, LossKind::Masked, LossKind::Marginal] {
            for complete in [false, true] {
                let t = labels([1, 0], vec![1], complete);
                let out = labels([1, 9], vec![1], complete);
                let a = loss(kind, logits_from_probs(p), &t, LossWeights::default());
                let b = loss(kind, logits_from_probs(p), &out, LossWeights::default());
                close(scalar(a.dice), scalar(b.dice));
                close(scalar(a.ce), scalar(b.ce));
            }
        }
    }

    #[test]
    fn all_unannotated_batch_is_finite_and_differentiable() {
        let device = Device::flex().autodiff();
        let logits = Tensor::<5>::from_data(TensorData::new(vec![0.3f32; 6], [1, 3, 1, 1, 2]), &device).require_grad();
        let t = labels([0, 0], vec![], false);
        for kind in [LossKind::Masked, LossKind::Marginal, LossKind::Naive] {
            let parts = loss(kind, logits.clone(), &t, LossWeights::default());
            let total = parts.total.clone();
            let grads = total.backward();
            let g = logits.grad(&grads).expect("gradient");
            let gv: Vec<f32> = g.into_data().try_to_vec_as::<f32>().unwrap();
            assert!(gv.iter().all(|x| x.is_finite()), "{kind:?}: {gv:?}");
            assert!(scalar(parts.total).is_finite());
        }
    }

    #[test]
    fn gradients_are_finite_for_extreme_logits() {
        let device = Device::flex().autodiff();
        let v = vec![80.0, -80.0, 0.0, 0.0, -80.0, 80.0];
        let logits = Tensor::<5>::from_data(TensorData::new(v, [1, 3, 1, 1, 2]), &device).require_grad();
        let t = labels([1, 0], vec![1], false);
        for kind in [LossKind::Masked, LossKind::Marginal, LossKind::Naive] {
            let parts = loss(kind, logits.clone(), &t, LossWeights::default());
            let grads = parts.total.backward();
            let gv: Vec<f32> = logits.grad(&grads).unwrap().into_data().try_to_vec_as::<f32>().unwrap();
            assert!(gv.iter().all(|x| x.is_finite()), "{kind:?}");
        }
    }
}
