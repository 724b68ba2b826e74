//! Shape inference: the `[d, h, w, c]` shape (batch 1, channels last) of
//! every value of a [`Graph`] for a given input shape.

use super::ops::Op;
use super::parse::Graph;

/// Spatial size after a convolution-like window, or `None` when the input
/// is smaller than the window.
fn window_out(n: usize, pad: usize, kernel: usize, stride: usize) -> Option<usize> {
    (n + pad).checked_sub(kernel).map(|v| v / stride + 1)
}

/// Shapes of every value (`None` for values no node computes), or an error
/// naming the node whose input does not fit.
pub fn infer_shapes(graph: &Graph, input: [usize; 4]) -> Result<Vec<Option<[usize; 4]>>, String> {
    if input.contains(&0) {
        return Err(format!("input shape {input:?} has an empty axis"));
    }
    if let Some(c) = graph.input_channels {
        if c != input[3] {
            return Err(format!("the graph takes {c} input channels, got {}", input[3]));
        }
    }
    let mut shapes: Vec<Option<[usize; 4]>> = vec![None; graph.names.len()];
    shapes[graph.input] = Some(input);
    for node in &graph.nodes {
        let get = |i: usize| shapes[node.inputs[i]].expect("inputs are computed before use");
        let x = get(0);
        let err = |what: String| format!("{}: {what}", node.label);
        let channels = |want: usize| {
            if x[3] == want {
                Ok(())
            } else {
                Err(err(format!("input has {} channels, the weight expects {want}", x[3])))
            }
        };
        let out = match &node.op {
            Op::Conv(c) => {
                channels(c.cin())?;
                let mut o = [0, 0, 0, c.cout()];
                for a in 0..3 {
                    o[a] = window_out(x[a], c.pads[a] + c.pads[a + 3], c.kernel, 1)
                        .ok_or_else(|| err(format!("input {x:?} is smaller than the kernel {}", c.kernel)))?;
                }
                o
            }
            Op::ConvTranspose(t) => {
                channels(t.cin())?;
                [x[0] * t.kernel, x[1] * t.kernel, x[2] * t.kernel, t.cout()]
            }
            Op::MaxPool(p) => {
                let mut o = [0, 0, 0, x[3]];
                for a in 0..3 {
                    o[a] = window_out(x[a], 0, p.kernel[a], p.stride[a])
                        .ok_or_else(|| err(format!("input {x:?} is smaller than the pooling window {:?}", p.kernel)))?;
                }
                o
            }
            Op::Resize { scale } => [x[0] * scale[0], x[1] * scale[1], x[2] * scale[2], x[3]],
            Op::Relu | Op::Softmax => x,
            Op::Slice(crop) => {
                let (_, size) = crop.resolve([x[0], x[1], x[2]]).map_err(err)?;
                [size[0], size[1], size[2], x[3]]
            }
            Op::Concat { crops } => {
                let mut out: Option<[usize; 4]> = None;
                for (i, crop) in crops.iter().enumerate() {
                    let s = get(i);
                    let size = match crop {
                        Some(c) => c.resolve([s[0], s[1], s[2]]).map_err(err)?.1,
                        None => [s[0], s[1], s[2]],
                    };
                    out = Some(match out {
                        None => [size[0], size[1], size[2], s[3]],
                        Some(o) if o[..3] == size => [o[0], o[1], o[2], o[3] + s[3]],
                        Some(o) => {
                            return Err(err(format!(
                                "inputs of spatial shapes {:?} and {size:?} cannot be concatenated",
                                &o[..3]
                            )))
                        }
                    });
                }
                out.ok_or_else(|| err("no inputs".into()))?
            }
        };
        shapes[node.output] = Some(out);
    }
    Ok(shapes)
}
