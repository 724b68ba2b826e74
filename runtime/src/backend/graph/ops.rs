//! The op set: what each supported ONNX node computes, read from its
//! inputs and attributes. Anything outside it is refused with a message
//! naming the op (or attribute) and the node.
//!
//! Supported: Conv (cubic kernel, stride 1, no dilation, one group), Relu,
//! MaxPool (no padding, floor rounding), Resize (nearest, integer scales on
//! the spatial axes, index `floor(i / s)`), ConvTranspose (kernel = stride),
//! Slice (constant bounds on the spatial axes, step 1), Concat (channels),
//! Softmax (channels), and Cast / Constant, which are folded into constants
//! by the parser.

use std::collections::HashMap;

use tract_onnx::pb::NodeProto;

use super::tensor::{Constant, HostTensor};

/// A 3D convolution, `weight` `[Cout, Cin, k, k, k]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    pub weight: HostTensor,
    /// `Cout` values, or `None` for no bias.
    pub bias: Option<Vec<f32>>,
    pub kernel: usize,
    /// Zero padding `[begin z, y, x, end z, y, x]`.
    pub pads: [usize; 6],
    /// A Relu follows (fused by the parser).
    pub relu: bool,
}

impl Conv {
    pub fn cin(&self) -> usize {
        self.weight.dims[1]
    }

    pub fn cout(&self) -> usize {
        self.weight.dims[0]
    }
}

/// A transposed 3D convolution with kernel = stride, `weight` `[Cin, Cout, k, k, k]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose {
    pub weight: HostTensor,
    pub bias: Option<Vec<f32>>,
    pub kernel: usize,
}

impl ConvTranspose {
    pub fn cin(&self) -> usize {
        self.weight.dims[0]
    }

    pub fn cout(&self) -> usize {
        self.weight.dims[1]
    }
}

/// Max pooling without padding, output `(n - kernel) / stride + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
}

/// A Slice of the spatial axes as written: ONNX bounds (negative counts from
/// the end, out-of-range clamped), resolved once the input shape is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    pub starts: [i64; 3],
    pub ends: [i64; 3],
}

impl Crop {
    /// Start and size along `[d, h, w]` for an input of `dims`.
    pub fn resolve(&self, dims: [usize; 3]) -> Result<([usize; 3], [usize; 3]), String> {
        let mut start = [0; 3];
        let mut size = [0; 3];
        for a in 0..3 {
            let n = dims[a] as i64;
            let clamp = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
            let (s, e) = (clamp(self.starts[a]), clamp(self.ends[a]));
            if e <= s {
                return Err(format!(
                    "the slice [{}, {}) of axis {} (size {n}) is empty",
                    self.starts[a],
                    self.ends[a],
                    a + 2
                ));
            }
            start[a] = s as usize;
            size[a] = (e - s) as usize;
        }
        Ok((start, size))
    }
}

/// What a node computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Conv(Conv),
    ConvTranspose(ConvTranspose),
    MaxPool(Pool),
    /// Nearest upsampling by integer factors `[z, y, x]`.
    Resize {
        scale: [usize; 3],
    },
    Relu,
    Slice(Crop),
    /// Concatenation on channels; an input may carry a fused Slice.
    Concat {
        crops: Vec<Option<Crop>>,
    },
    /// Softmax over channels.
    Softmax,
}

impl Op {
    /// The ONNX op type, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::MaxPool(_) => "MaxPool",
            Op::Resize { .. } => "Resize",
            Op::Relu => "Relu",
            Op::Slice(_) => "Slice",
            Op::Concat { .. } => "Concat",
            Op::Softmax => "Softmax",
        }
    }
}

/// A node read from ONNX: its op and the names of its computed inputs.
pub struct ParsedNode {
    pub op: Op,
    pub inputs: Vec<String>,
}

/// A node's name for messages: `"enc0.conv0"`, or `#3` (its index) when unnamed.
pub fn node_name(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("#{index}")
    } else {
        format!("{:?}", node.name)
    }
}

/// How a node is named in messages: `Conv node "enc0.conv0"`.
pub fn node_label(node: &NodeProto, index: usize) -> String {
    format!("{} node {}", node.op_type, node_name(node, index))
}

/// A node's attributes, with the checks every op needs.
struct Attrs<'a> {
    node: &'a NodeProto,
    label: &'a str,
}

impl Attrs<'_> {
    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self.node.attribute.iter().find(|a| !known.contains(&a.name.as_str())) {
            Some(a) => Err(format!("{}: attribute {:?} is not supported", self.label, a.name)),
            None => Ok(()),
        }
    }

    fn ints(&self, name: &str) -> Option<&[i64]> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.ints.as_slice())
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("{}: {what}", self.label)
    }

    /// An int-list attribute that must equal `want` everywhere (when given).
    fn all_equal(&self, name: &str, want: i64, len: usize) -> Result<(), String> {
        match self.ints(name) {
            Some(v) if v.len() != len || v.iter().any(|&x| x != want) => {
                Err(self.err(format!("{name} {v:?} is not supported (only {want})")))
            }
            _ => Ok(()),
        }
    }

    fn int_equal(&self, name: &str, want: i64) -> Result<(), String> {
        match self.int(name) {
            Some(v) if v != want => Err(self.err(format!("{name} = {v} is not supported (only {want})"))),
            _ => Ok(()),
        }
    }

    fn auto_pad_off(&self, allow_valid: bool) -> Result<(), String> {
        match self.string("auto_pad").as_deref() {
            None | Some("NOTSET") => Ok(()),
            Some("VALID") if allow_valid => Ok(()),
            Some(other) => Err(self.err(format!("auto_pad {other:?} is not supported"))),
        }
    }
}

/// The constants known so far (initializers, folded casts, Constant nodes).
pub type Constants = HashMap<String, Constant>;

/// Input `i` of a node, when given (an empty name means "absent").
fn input(node: &NodeProto, i: usize) -> Option<&str> {
    node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
}

/// A float constant input.
fn const_f32(node: &NodeProto, i: usize, what: &str, consts: &Constants, a: &Attrs) -> Result<HostTensor, String> {
    let name = input(node, i).ok_or_else(|| a.err(format!("missing {what}")))?;
    let c = consts
        .get(name)
        .ok_or_else(|| a.err(format!("{what} {name:?} must be a constant (an initializer)")))?;
    c.as_f32()
        .ok_or_else(|| a.err(format!("{what} {name:?} must be float32 (float16 weights need a Cast)")))
}

fn const_i64<'c>(
    node: &NodeProto,
    i: usize,
    what: &str,
    consts: &'c Constants,
    a: &Attrs,
) -> Result<&'c [i64], String> {
    let name = input(node, i).ok_or_else(|| a.err(format!("missing {what}")))?;
    consts
        .get(name)
        .and_then(Constant::as_i64)
        .ok_or_else(|| a.err(format!("{what} {name:?} must be a constant integer tensor")))
}

fn optional_bias(node: &NodeProto, consts: &Constants, a: &Attrs, n: usize) -> Result<Option<Vec<f32>>, String> {
    if input(node, 2).is_none() {
        return Ok(None);
    }
    let b = const_f32(node, 2, "bias", consts, a)?;
    if b.data.len() != n {
        return Err(a.err(format!("bias has {} values, expected {n}", b.data.len())));
    }
    Ok(Some(b.data))
}

/// A rank-5 weight with a cubic kernel matching `kernel_shape` (if given).
fn cubic_weight(w: &HostTensor, a: &Attrs) -> Result<usize, String> {
    if w.dims.len() != 5 {
        return Err(a.err(format!("weight shape {:?} is not 3D (rank 5 expected)", w.dims)));
    }
    let k = [w.dims[2], w.dims[3], w.dims[4]];
    if let Some(ks) = a.ints("kernel_shape") {
        if ks.len() != 3 || ks.iter().zip(&k).any(|(&x, &y)| x != y as i64) {
            return Err(a.err(format!(
                "kernel_shape {ks:?} does not match the weight shape {:?}",
                w.dims
            )));
        }
    }
    if k[0] != k[1] || k[1] != k[2] || k[0] == 0 {
        return Err(a.err(format!("kernel {k:?} is not supported (cubic kernels only)")));
    }
    Ok(k[0])
}

fn non_negative(v: &[i64], name: &str, a: &Attrs) -> Result<Vec<usize>, String> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| a.err(format!("{name} {v:?} must not be negative"))))
        .collect()
}

fn conv(node: &NodeProto, a: &Attrs, consts: &Constants) -> Result<Op, String> {
    a.check_known(&["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
    a.auto_pad_off(true)?;
    a.all_equal("dilations", 1, 3)?;
    a.all_equal("strides", 1, 3)?;
    a.int_equal("group", 1)?;
    let weight = const_f32(node, 1, "weight", consts, a)?;
    let kernel = cubic_weight(&weight, a)?;
    let pads = match a.ints("pads") {
        None => [0; 6],
        Some(p) if p.len() == 6 => {
            let p = non_negative(p, "pads", a)?;
            [p[0], p[1], p[2], p[3], p[4], p[5]]
        }
        Some(p) => return Err(a.err(format!("pads {p:?} must have 6 values"))),
    };
    let bias = optional_bias(node, consts, a, weight.dims[0])?;
    Ok(Op::Conv(Conv {
        weight,
        bias,
        kernel,
        pads,
        relu: false,
    }))
}

fn conv_transpose(node: &NodeProto, a: &Attrs, consts: &Constants) -> Result<Op, String> {
    a.check_known(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "output_padding",
        "pads",
        "strides",
    ])?;
    a.auto_pad_off(false)?;
    a.all_equal("dilations", 1, 3)?;
    a.all_equal("pads", 0, 6)?;
    a.all_equal("output_padding", 0, 3)?;
    a.int_equal("group", 1)?;
    let weight = const_f32(node, 1, "weight", consts, a)?;
    let kernel = cubic_weight(&weight, a)?;
    match a.ints("strides") {
        Some(s) if s.len() == 3 && s.iter().all(|&v| v == kernel as i64) => {}
        s => {
            return Err(a.err(format!(
                "strides {s:?} are not supported: only strides equal to the kernel ({kernel}) are"
            )))
        }
    }
    let bias = optional_bias(node, consts, a, weight.dims[1])?;
    Ok(Op::ConvTranspose(ConvTranspose { weight, bias, kernel }))
}

fn max_pool(a: &Attrs) -> Result<Op, String> {
    a.check_known(&[
        "auto_pad",
        "ceil_mode",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ])?;
    a.auto_pad_off(true)?;
    a.int_equal("ceil_mode", 0)?;
    a.all_equal("dilations", 1, 3)?;
    a.all_equal("pads", 0, 6)?;
    let three = |name: &str, default: Option<[usize; 3]>| -> Result<[usize; 3], String> {
        match a.ints(name) {
            Some(v) if v.len() == 3 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize, v[2] as usize]),
            Some(v) => Err(a.err(format!("{name} {v:?} must be 3 positive values"))),
            None => default.ok_or_else(|| a.err(format!("missing {name}"))),
        }
    };
    Ok(Op::MaxPool(Pool {
        kernel: three("kernel_shape", None)?,
        stride: three("strides", Some([1; 3]))?,
    }))
}

fn resize(node: &NodeProto, a: &Attrs, consts: &Constants) -> Result<Op, String> {
    a.check_known(&[
        "antialias",
        "coordinate_transformation_mode",
        "cubic_coeff_a",
        "exclude_outside",
        "extrapolation_value",
        "mode",
        "nearest_mode",
    ])?;
    a.int_equal("antialias", 0)?;
    let mode = a.string("mode").unwrap_or_else(|| "nearest".into());
    if mode != "nearest" {
        return Err(a.err(format!("mode {mode:?} is not supported (only \"nearest\")")));
    }
    if input(node, 3).is_some() {
        return Err(a.err("the sizes input is not supported (give scales)"));
    }
    let scales = const_f32(node, 2, "scales", consts, a)?;
    let s = &scales.data;
    if s.len() != 5 || s[0] != 1.0 || s[1] != 1.0 {
        return Err(a.err(format!("scales {s:?} are not supported (only [1, 1, sz, sy, sx])")));
    }
    let mut scale = [1; 3];
    for (d, &v) in s[2..].iter().enumerate() {
        if v < 1.0 || v.fract() != 0.0 || v > 64.0 {
            return Err(a.err(format!("scale {v} is not supported (whole factors 1 to 64 only)")));
        }
        scale[d] = v as usize;
    }
    let ctm = a
        .string("coordinate_transformation_mode")
        .unwrap_or_else(|| "half_pixel".into());
    let nearest = a.string("nearest_mode").unwrap_or_else(|| "round_prefer_floor".into());
    // Every accepted combination maps output index i to input floor(i / s)
    // for whole factors s.
    let floor_index = match (ctm.as_str(), nearest.as_str()) {
        ("asymmetric", "floor") => true,
        ("asymmetric", "round_prefer_floor") => scale.iter().all(|&v| v <= 2),
        ("half_pixel" | "pytorch_half_pixel", "round_prefer_floor" | "round_prefer_ceil") => true,
        _ => false,
    };
    if !floor_index {
        return Err(a.err(format!(
            "coordinate_transformation_mode {ctm:?} with nearest_mode {nearest:?} is not supported"
        )));
    }
    Ok(Op::Resize { scale })
}

fn slice(node: &NodeProto, a: &Attrs, consts: &Constants, opset: i64) -> Result<Op, String> {
    let (starts, ends, axes, steps): (Vec<i64>, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>) = if opset < 10 {
        a.check_known(&["starts", "ends", "axes"])?;
        (
            a.ints("starts").ok_or_else(|| a.err("missing starts"))?.to_vec(),
            a.ints("ends").ok_or_else(|| a.err("missing ends"))?.to_vec(),
            a.ints("axes").map(<[i64]>::to_vec),
            None,
        )
    } else {
        a.check_known(&[])?;
        let opt = |i: usize, what: &str| -> Result<Option<Vec<i64>>, String> {
            match input(node, i) {
                None => Ok(None),
                Some(_) => Ok(Some(const_i64(node, i, what, consts, a)?.to_vec())),
            }
        };
        (
            const_i64(node, 1, "starts", consts, a)?.to_vec(),
            const_i64(node, 2, "ends", consts, a)?.to_vec(),
            opt(3, "axes")?,
            opt(4, "steps")?,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    if starts.len() != ends.len() || axes.len() != starts.len() {
        return Err(a.err("starts, ends and axes differ in length"));
    }
    if let Some(st) = steps {
        if st.len() != starts.len() || st.iter().any(|&s| s != 1) {
            return Err(a.err(format!("steps {st:?} are not supported (only 1)")));
        }
    }
    let mut crop = Crop {
        starts: [0; 3],
        ends: [i64::MAX; 3],
    };
    for ((&axis, &s), &e) in axes.iter().zip(&starts).zip(&ends) {
        let axis = if axis < 0 { axis + 5 } else { axis };
        if !(2..5).contains(&axis) {
            return Err(a.err(format!(
                "slicing axis {axis} is not supported (spatial axes 2, 3, 4 only)"
            )));
        }
        crop.starts[axis as usize - 2] = s;
        crop.ends[axis as usize - 2] = e;
    }
    Ok(Op::Slice(crop))
}

fn channel_axis(a: &Attrs, default: Option<i64>) -> Result<(), String> {
    match a.int("axis").or(default) {
        Some(1) | Some(-4) => Ok(()),
        Some(v) => Err(a.err(format!("axis {v} is not supported (only the channel axis 1)"))),
        None => Err(a.err("missing axis")),
    }
}

/// Read one node. `consts` holds the constants defined before it; `opset`
/// is the model's default-domain opset.
pub fn parse_node(node: &NodeProto, index: usize, consts: &Constants, opset: i64) -> Result<ParsedNode, String> {
    let label = &node_label(node, index);
    let a = Attrs { node, label };
    let unsupported = |op: &str| format!("unsupported ONNX op {op} (node {})", node_name(node, index));
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return Err(unsupported(&format!("{}::{}", node.domain, node.op_type)));
    }
    let computed = |n: usize| -> Vec<String> { node.input.iter().take(n).cloned().collect() };
    let (op, inputs) = match node.op_type.as_str() {
        "Conv" => (conv(node, &a, consts)?, computed(1)),
        "ConvTranspose" => (conv_transpose(node, &a, consts)?, computed(1)),
        "MaxPool" => (max_pool(&a)?, computed(1)),
        "Resize" => (resize(node, &a, consts)?, computed(1)),
        "Relu" => {
            a.check_known(&[])?;
            (Op::Relu, computed(1))
        }
        "Slice" => (slice(node, &a, consts, opset)?, computed(1)),
        "Concat" => {
            a.check_known(&["axis"])?;
            channel_axis(&a, None)?;
            (
                Op::Concat {
                    crops: vec![None; node.input.len()],
                },
                node.input.clone(),
            )
        }
        "Softmax" => {
            a.check_known(&["axis"])?;
            if opset < 13 {
                return Err(a.err(format!(
                    "Softmax before opset 13 (this model: {opset}) normalises over C·D·H·W, which is not supported"
                )));
            }
            channel_axis(&a, Some(-1))?;
            (Op::Softmax, computed(1))
        }
        other => return Err(unsupported(other)),
    };
    if inputs.is_empty() || inputs.iter().any(String::is_empty) {
        return Err(a.err("missing input"));
    }
    if let Some(c) = inputs.iter().find(|i| consts.contains_key(*i)) {
        return Err(a.err(format!(
            "input {c:?} is a constant; only computed values are supported here"
        )));
    }
    Ok(ParsedNode { op, inputs })
}
