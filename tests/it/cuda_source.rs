//! The CUDA kernels' source (`crates/kernels/cuda/*.cu`) run on the host: the harness in
//! `tests/fixtures/cuda_host/` compiles each kernel as plain C++ (g++, no CUDA) and runs its
//! threads one after another over a small grid, so that their index arithmetic, window
//! rules, order of additions and rounding are checked against the CPU kernels bit for bit
//! on any machine. `just gpu-check` then runs the same kernels on a GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor, Var};
use topo::kernels;

/// The harness, compiled into `dir`.
fn harness(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join("harness");
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let out = Command::new(&compiler)
        .args([
            "-std=c++17",
            "-O1",
            "-ffp-contract=off",
            "-Wall",
            "-Werror",
            "-I",
        ])
        .arg(root.join("crates/kernels/cuda"))
        .arg(root.join("tests/fixtures/cuda_host/harness.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler `{compiler}` ({e}); set CXX"));
    assert!(
        out.status.success(),
        "the kernels do not compile as C++:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn run(exe: &Path, args: &[String]) {
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "harness {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A value of the harness's raw little-endian files.
trait Raw: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
    fn bits(self) -> u64;
}

impl Raw for f32 {
    const SIZE: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().unwrap())
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Raw for f64 {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().unwrap())
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

fn write<T: Raw>(path: &Path, v: &[T]) {
    let mut bytes = Vec::with_capacity(v.len() * T::SIZE);
    v.iter().for_each(|x| x.put(&mut bytes));
    std::fs::write(path, bytes).unwrap();
}

fn read<T: Raw>(path: &Path) -> Vec<T> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(T::SIZE)
        .map(T::get)
        .collect()
}

/// The bit patterns, so that a NaN equals itself and -0 differs from 0.
fn bits<T: Raw>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.bits()).collect()
}

/// Values on a coarse grid, so that windows hold ties; a NaN and infinities where asked.
fn pool_input(n: usize, seed: u64, specials: bool) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n)
        .map(|i| ((i as u64 * 2654435761 + seed * 97) % 7) as f32 - 3.0)
        .collect();
    if specials && n > 8 {
        v[3] = f32::NAN;
        v[5] = f32::NEG_INFINITY;
        v[n - 2] = f32::INFINITY;
    }
    v
}

/// (planes as batch x channels, h, w, kernel, stride, padding): the models' pools (3/2/1
/// on odd and even sides, 2/2/0), overlapping and padded windows, non-square planes.
const POOLS: [(usize, usize, usize, usize, usize, usize, usize); 7] = [
    (2, 3, 9, 9, 3, 2, 1),
    (2, 2, 8, 6, 3, 2, 1),
    (1, 3, 8, 8, 2, 2, 0),
    (2, 2, 7, 5, 2, 2, 0),
    (1, 2, 6, 7, 3, 1, 1),
    (1, 2, 9, 8, 4, 3, 2),
    (3, 1, 5, 5, 2, 1, 0),
];

#[test]
fn max_pool_kernels_match_the_cpu_kernel_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = harness(tmp.path());
    let file = |name: &str| tmp.path().join(name);
    let arg = |p: PathBuf| p.display().to_string();
    for (case, &(b, c, h, w, k, s, p)) in POOLS.iter().enumerate() {
        for specials in [false, true] {
            let x = pool_input(b * c * h * w, case as u64, specials);
            let xs = Var::from_vec(x.clone(), (b, c, h, w), &Device::Cpu).unwrap();
            let ys = kernels::max_pool2d(xs.as_tensor(), k, s, p).unwrap();
            let (oh, ow) = (ys.dim(2).unwrap(), ys.dim(3).unwrap());
            // Output gradients with many distinct magnitudes, so that the order of the
            // additions where windows overlap shows in the bits.
            let g: Vec<f32> = (0..b * c * oh * ow)
                .map(|i| 1.0 / (i as f32 + 3.0) + (i % 5) as f32 * 1e3)
                .collect();
            let gs = Tensor::from_vec(g.clone(), (b, c, oh, ow), &Device::Cpu).unwrap();
            let dx = (ys.clone() * &gs)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(xs.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            write(&file("x"), &x);
            write(&file("g"), &g);
            let dims = [b * c, h, w, k, s, p].map(|v| v.to_string());
            let fwd = ["max_pool_fwd", "f32"]
                .map(String::from)
                .into_iter()
                .chain([arg(file("x")), arg(file("y")), arg(file("idx"))])
                .chain(dims.clone())
                .collect::<Vec<_>>();
            run(&exe, &fwd);
            let expected = ys.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(
                bits(&read::<f32>(&file("y"))),
                bits(&expected),
                "forward, case {case} {:?}, specials {specials}",
                POOLS[case]
            );
            let bwd = ["max_pool_bwd", "f32"]
                .map(String::from)
                .into_iter()
                .chain([arg(file("g")), arg(file("idx")), arg(file("dx"))])
                .chain(dims)
                .collect::<Vec<_>>();
            run(&exe, &bwd);
            assert_eq!(
                bits(&read::<f32>(&file("dx"))),
                bits(&dx),
                "backward, case {case} {:?}, specials {specials}",
                POOLS[case]
            );
        }
    }
}

#[test]
fn max_pool_kernels_in_f64_match_the_cpu_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = harness(tmp.path());
    let file = |name: &str| tmp.path().join(name).display().to_string();
    let (b, c, h, w, k, s, p) = POOLS[0];
    let x: Vec<f64> = pool_input(b * c * h * w, 9, false)
        .iter()
        .map(|&v| f64::from(v) / 3.0)
        .collect();
    let xs = Var::from_vec(x.clone(), (b, c, h, w), &Device::Cpu).unwrap();
    let ys = kernels::max_pool2d(xs.as_tensor(), k, s, p).unwrap();
    let n_out = ys.elem_count();
    let g: Vec<f64> = (0..n_out).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let gs = Tensor::from_vec(g.clone(), ys.shape(), &Device::Cpu).unwrap();
    let grads = (ys.clone() * &gs)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dx = grads.get(xs.as_tensor()).unwrap().flatten_all().unwrap();
    write(Path::new(&file("x")), &x);
    write(Path::new(&file("g")), &g);
    let dims: Vec<String> = [b * c, h, w, k, s, p]
        .iter()
        .map(|v| v.to_string())
        .collect();
    let mut fwd = vec![
        "max_pool_fwd".into(),
        "f64".into(),
        file("x"),
        file("y"),
        file("idx"),
    ];
    fwd.extend(dims.clone());
    run(&exe, &fwd);
    let mut bwd = vec![
        "max_pool_bwd".into(),
        "f64".into(),
        file("g"),
        file("idx"),
        file("dx"),
    ];
    bwd.extend(dims);
    run(&exe, &bwd);
    let expected = ys.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert_eq!(bits(&read::<f64>(Path::new(&file("y")))), bits(&expected));
    assert_eq!(
        bits(&read::<f64>(Path::new(&file("dx")))),
        bits(&dx.to_vec1::<f64>().unwrap())
    );
}

#[test]
fn sgd_kernels_match_the_cpu_update_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = harness(tmp.path());
    let file = |name: &str| tmp.path().join(name).display().to_string();
    // Odd length, larger than the emulated grid, values of many magnitudes.
    let n = 1001;
    let wave = |seed: f32| -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 10f32.powi(i as i32 % 5 - 2))
            .collect()
    };
    let (p0, g, b0) = (wave(0.1), wave(1.3), wave(2.9));
    let (lr, momentum, wd) = (0.1f32, 0.9f32, 5e-4f32);
    let p = Var::from_vec(p0.clone(), n, &Device::Cpu).unwrap();
    let buf = Tensor::from_vec(b0.clone(), n, &Device::Cpu).unwrap();
    let grad = Tensor::from_vec(g.clone(), n, &Device::Cpu).unwrap();
    kernels::sgd::step(
        p.as_tensor(),
        &grad,
        &buf,
        f64::from(lr),
        f64::from(momentum),
        f64::from(wd),
    )
    .unwrap();
    write(Path::new(&file("p")), &p0);
    write(Path::new(&file("g")), &g);
    write(Path::new(&file("buf")), &b0);
    run(
        &exe,
        &[
            "sgd_momentum".into(),
            file("buf"),
            file("g"),
            file("p"),
            file("buf2"),
            n.to_string(),
            momentum.to_string(),
            wd.to_string(),
        ],
    );
    let cpu_buf = buf.to_vec1::<f32>().unwrap();
    assert_eq!(bits(&read::<f32>(Path::new(&file("buf2")))), bits(&cpu_buf));
    run(
        &exe,
        &[
            "sgd_descend".into(),
            file("p"),
            file("buf2"),
            file("p2"),
            n.to_string(),
            lr.to_string(),
        ],
    );
    let cpu_p = p.as_tensor().to_vec1::<f32>().unwrap();
    assert_eq!(bits(&read::<f32>(Path::new(&file("p2")))), bits(&cpu_p));
    assert_ne!(bits(&cpu_p), bits(&p0), "the step changed nothing");
}

/// (batch, channels, h, w, k, stride, padding): the models' convs (3x3 same, strided, 1x1,
/// DenseNet's and the audio stems' 7x7) on non-square planes.
const CONVS: [(usize, usize, usize, usize, usize, usize, usize); 5] = [
    (2, 3, 6, 5, 3, 1, 1),
    (2, 2, 9, 8, 3, 2, 1),
    (3, 4, 4, 4, 1, 1, 0),
    (1, 2, 11, 9, 7, 2, 3),
    (2, 3, 5, 7, 1, 2, 0),
];

#[test]
fn unfold_kernels_match_the_cpu_columns_and_their_adjoint_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = harness(tmp.path());
    let file = |name: &str| tmp.path().join(name).display().to_string();
    for (case, &(b, c, h, w, k, s, p)) in CONVS.iter().enumerate() {
        let x: Vec<f32> = (0..b * c * h * w)
            .map(|i| 1.0 / (i as f32 + 2.0) - 0.2)
            .collect();
        let xs = Tensor::from_vec(x.clone(), (b, c, h, w), &Device::Cpu).unwrap();
        let cols = kernels::unfold2d(&xs, k, s, p).unwrap();
        // Column entries of many magnitudes, so that the order of the sums shows.
        let g: Vec<f32> = (0..cols.elem_count())
            .map(|i| (i as f32 * 0.61).sin() * 10f32.powi(i as i32 % 4))
            .collect();
        let gs = Tensor::from_vec(g.clone(), cols.shape(), &Device::Cpu).unwrap();
        let folded = kernels::fold2d(&gs, (b, c, h, w), k, s, p).unwrap();
        write(Path::new(&file("x")), &x);
        write(Path::new(&file("g")), &g);
        let dims: Vec<String> = [b, c, h, w, k, s, p]
            .iter()
            .map(|v| v.to_string())
            .collect();
        let mut un = vec!["unfold".into(), "f32".into(), file("x"), file("cols")];
        un.extend(dims.clone());
        run(&exe, &un);
        let mut fo = vec!["fold".into(), "f32".into(), file("g"), file("dx")];
        fo.extend(dims);
        run(&exe, &fo);
        let expected = cols.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(
            bits(&read::<f32>(Path::new(&file("cols")))),
            bits(&expected),
            "unfold, case {case}"
        );
        let expected = folded.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(
            bits(&read::<f32>(Path::new(&file("dx")))),
            bits(&expected),
            "fold, case {case}"
        );
    }
}
