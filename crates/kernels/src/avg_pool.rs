//! Non-overlapping average pooling (`torch.nn.AvgPool2d(k)`, floor mode).
//!
//! candle 0.11's `avg_pool2d` backward up-samples the gradient with nearest-neighbour
//! interpolation to the input size, which misplaces it when a side is not a multiple of
//! the kernel (DenseNet's transitions on 101-frame spectrograms see odd sides). Cropping
//! the rows and columns floor mode ignores first makes every side a multiple, where
//! candle's backward is exact; the crop's own backward pads with zeros.

use candle_core::{Result, Tensor, bail};

/// Average pooling of a `(B, C, H, W)` tensor with a `kernel x kernel` window and stride
/// `kernel`.
pub fn avg_pool2d(xs: &Tensor, kernel: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if kernel == 0 || h < kernel || w < kernel {
        bail!("avg_pool2d: cannot pool {h}x{w} with kernel {kernel}")
    }
    let (ch, cw) = (h / kernel * kernel, w / kernel * kernel);
    let xs = if ch != h || cw != w {
        xs.narrow(2, 0, ch)?.narrow(3, 0, cw)?
    } else {
        xs.clone()
    };
    xs.avg_pool2d(kernel)
}
