//! Models compiled into the binary, so a copied `edge-seg` works on its own.

/// Name of the shipped default model.
pub const DEFAULT_MODEL: &str = "default";

/// The default model's ONNX bytes, when the build found
/// `models/zoo/default.onnx`.
pub fn default_model_bytes() -> Option<&'static [u8]> {
    #[cfg(default_model)]
    {
        Some(include_bytes!(env!("EDGE_SEG_DEFAULT_MODEL")))
    }
    #[cfg(not(default_model))]
    {
        None
    }
}

/// Names of the built-in models.
pub fn builtin_names() -> Vec<&'static str> {
    default_model_bytes().map(|_| DEFAULT_MODEL).into_iter().collect()
}
