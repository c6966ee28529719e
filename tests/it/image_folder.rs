//! `kind: image_folder` on trees the tests make: PNG and JPEG files of odd sizes, a corrupt
//! file, an empty class, a greyscale image in a colour set, an EXIF-rotated photo; the
//! pixels equal the IDX loader's; a topographic ResNet-18 with ImageNet stems trains.

use std::path::Path;

use candle_core::Device;
use image::{DynamicImage, ImageFormat, RgbImage};
use topo::config::{Colour, ImageFolderSpec, Limits};
use topo::data::image_folder::decode::{Target, decode};
use topo::data::image_folder::{Source, load, plan};

use super::common::topo_command;
use super::fixtures::write_fashion_mnist;

/// A colour image `w x h` whose pixels depend on `seed`.
fn colour(w: u32, h: u32, seed: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x * 7 + seed * 31) % 256) as u8,
            ((y * 5 + seed * 17) % 256) as u8,
            ((x + y + seed) % 256) as u8,
        ])
    }))
}

fn save(img: &DynamicImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = if path.extension().is_some_and(|e| e == "png") {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    img.save_with_format(path, format).unwrap();
}

/// `train/{cat,dog}` with six images each and `val/{cat,dog}` with two, PNG and JPEG
/// (upper-case extensions too) at odd sizes.
fn tree(root: &Path) {
    let sizes = [(37, 23), (23, 41), (30, 30), (64, 19), (19, 64), (45, 33)];
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let ext = ["png", "jpg", "JPEG"][i % 3];
            let seed = (c * 10 + i) as u32;
            save(
                &colour(w, h, seed),
                &root.join(format!("train/{class}/{i}.{ext}")),
            );
        }
        for i in 0..2 {
            save(
                &colour(31, 29, 100 + i),
                &root.join(format!("val/{class}/v{i}.png")),
            );
        }
    }
    // Not an image: skipped, as torchvision skips it.
    std::fs::write(root.join("train/cat/notes.txt"), "taken at the zoo").unwrap();
}

fn spec(size: u32, resize: u32) -> ImageFolderSpec {
    serde_json::from_value(serde_json::json!({
        "size": size,
        "resize": resize,
        "augment": ["random_resized_crop", "horizontal_flip"],
    }))
    .unwrap()
}

#[test]
fn a_tree_of_pngs_and_jpegs_loads_decoded_once_and_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pets");
    tree(&root);
    let spec = spec(16, 20);
    let p = plan(&root, &spec, Limits::default()).unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.classes, ["cat", "dog"]);
    // val/ without test/: val/ is the test split, validation a tenth of train/.
    assert_eq!(
        (p.train.len(), p.validation.len(), p.test.len()),
        (11, 1, 4)
    );
    assert_eq!(p.sources, [Source::HeldOut(0.1), Source::Folder("val")]);
    assert_eq!(p.skipped, 1);

    let cache = tmp.path().join("cache");
    let data = load(&root, &spec, Limits::default(), &cache).unwrap();
    assert_eq!((data.num_classes, data.in_channels), (2, 3));
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let train = data
        .train
        .batch(&[0, 1, 2], Some(&mut rng), &Device::Cpu)
        .unwrap();
    assert_eq!(train.inputs.dims(), [3, 3, 16, 16]);
    let test = data.test.batch(&[0, 1, 2, 3], None, &Device::Cpu).unwrap();
    assert_eq!(test.inputs.dims(), [4, 3, 16, 16]);
    assert_eq!(test.labels.to_vec1::<u32>().unwrap(), [0, 0, 1, 1]);

    // One cache file of pixels and one of statistics; loading again reads them.
    let cached = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let first = cached(&cache);
    assert_eq!(first.len(), 2, "{first:?}");
    let again = load(&root, &spec, Limits::default(), &cache).unwrap();
    let test_again = again.test.batch(&[0, 1, 2, 3], None, &Device::Cpu).unwrap();
    assert_eq!(
        test.inputs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        test_again
            .inputs
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    );
    assert_eq!(cached(&cache), first);
    // A file changed on disk is decoded anew (the key covers sizes and times); the
    // statistics, of training images only, stand.
    save(&colour(50, 50, 99), &root.join("val/dog/v0.png"));
    load(&root, &spec, Limits::default(), &cache).unwrap();
    assert_eq!(cached(&cache).len(), 3);
}

#[test]
fn every_problem_of_a_tree_is_named_once_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pets");
    tree(&root);
    std::fs::write(
        root.join("train/cat/broken.jpg"),
        b"\xFF\xD8\xFF not really a jpeg",
    )
    .unwrap();
    save(
        &DynamicImage::ImageLuma8(image::GrayImage::from_pixel(20, 20, image::Luma([90]))),
        &root.join("train/dog/grey.png"),
    );
    std::fs::create_dir_all(root.join("train/empty")).unwrap();
    std::fs::create_dir_all(root.join("val/fox")).unwrap();
    save(&colour(20, 20, 3), &root.join("val/fox/f.png"));
    let yaml = tmp.path().join("pets.yaml");
    std::fs::write(
        &yaml,
        format!(
            "extends: {}\nname: pets\ndatasets:\n  pets: {{ kind: image_folder, root: pets, image: {{ size: 16 }} }}\ngrid:\n  dataset: [pets]\n",
            super::common::tiny_yaml()
        ),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let out = topo_command(tmp.path(), &yaml, "run", &results, &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    let expected = [
        "pets/train/cat/broken.jpg: cannot be decoded",
        "pets/train/dog/grey.png: a greyscale image in a colour data set",
        "pets/train/empty: class folder holds no .jpg, .jpeg or .png file",
        "pets/val/fox: a class folder that train/ does not have",
    ];
    assert_eq!(errors.len(), expected.len(), "{stderr}");
    for e in &expected {
        assert_eq!(
            errors.iter().filter(|l| l.contains(e)).count(),
            1,
            "{e} in {stderr}"
        );
    }
    assert!(!results.join("pets/runs").exists());

    // Greyscale files are accepted when asked to convert them; the other problems stay.
    let convert = topo_command(
        tmp.path(),
        &yaml,
        "validate",
        &results,
        &["--data", "--set", "datasets.pets.image.convert_grey=true"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&convert.stderr);
    assert_eq!(convert.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("greyscale"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        3,
        "{stderr}"
    );
}

#[test]
fn an_image_folder_without_its_settings_is_refused_with_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("pets.yaml");
    std::fs::write(
        &yaml,
        format!(
            "extends: {}\nname: pets\ndatasets:\n  pets: {{ kind: image_folder, root: pets }}\n  fm: {{ kind: fashion_mnist, root: data, image: {{ size: 28 }} }}\ngrid:\n  dataset: [pets]\n",
            super::common::tiny_yaml()
        ),
    )
    .unwrap();
    let out = topo_command(
        tmp.path(),
        &yaml,
        "validate",
        &tmp.path().join("results"),
        &[],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pets.yaml:4") && stderr.contains("needs `image: { size: N }`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pets.yaml:5") && stderr.contains("`image` applies to image_folder"),
        "{stderr}"
    );
}

/// A JPEG with an EXIF block (APP1) saying how to turn it upright.
fn jpeg_with_orientation(img: &DynamicImage, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut plain), ImageFormat::Jpeg)
        .unwrap();
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01".to_vec();
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn a_photo_taken_sideways_is_trained_upright() {
    // Stored 32 wide and 16 high: dark on the left, bright on the right.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(32, 16, |x, _| {
        image::Rgb(if x < 16 { [10; 3] } else { [240; 3] })
    }));
    let target = Target {
        colour: Colour::Rgb,
        convert_grey: false,
        shorter: 16,
    };
    let path = Path::new("sideways.jpg");
    // Orientation 6: turn 90° clockwise to view, so the dark half ends on top.
    let up = decode(path, &jpeg_with_orientation(&img, 6), target).unwrap();
    assert_eq!((up.width, up.height), (16, 32));
    let at = |d: &topo::data::image_folder::decode::Decoded, x: u32, y: u32| {
        d.pixels[((y * d.width + x) * 3) as usize]
    };
    assert!(at(&up, 8, 4) < 40 && at(&up, 8, 28) > 210);
    // Without the tag, as stored.
    let plain = decode(path, &jpeg_with_orientation(&img, 1), target).unwrap();
    assert_eq!((plain.width, plain.height), (32, 16));
    assert!(at(&plain, 4, 8) < 40 && at(&plain, 28, 8) > 210);
}

#[test]
fn a_png_folder_gives_the_idx_loaders_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let idx_root = tmp.path().join("idx");
    write_fashion_mnist(&idx_root, 4, 3, false).unwrap();
    let idx = topo::data::fashion_mnist::load(&idx_root, Limits::default()).unwrap();
    // The test images written as PNG, one folder per class, named by their index.
    let folder = tmp.path().join("png");
    let all: Vec<usize> = (0..idx.test.len()).collect();
    let batch = idx.test.batch(&all, None, &Device::Cpu).unwrap();
    let values: Vec<f32> = batch.inputs.flatten_all().unwrap().to_vec1().unwrap();
    let labels: Vec<u32> = batch.labels.to_vec1().unwrap();
    let (mean, std) = (
        topo::data::fashion_mnist::MEAN,
        topo::data::fashion_mnist::STD,
    );
    for (i, &label) in labels.iter().enumerate() {
        let pixels: Vec<u8> = values[i * 784..(i + 1) * 784]
            .iter()
            .map(|v| ((v * std + mean) * 255.0).round() as u8)
            .collect();
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_raw(28, 28, pixels).unwrap());
        for split in ["train", "test"] {
            save(&img, &folder.join(format!("{split}/{label:02}/{i:03}.png")));
        }
    }
    let spec: ImageFolderSpec = serde_json::from_value(serde_json::json!({
        "size": 28,
        "colour": "grey",
        "normalisation": { "mean": [mean], "std": [std] },
    }))
    .unwrap();
    let png = load(&folder, &spec, Limits::default(), &tmp.path().join("cache")).unwrap();
    assert_eq!(png.test.len(), idx.test.len());
    let png_batch = png
        .test
        .batch(&(0..png.test.len()).collect::<Vec<_>>(), None, &Device::Cpu)
        .unwrap();
    let png_values: Vec<f32> = png_batch.inputs.flatten_all().unwrap().to_vec1().unwrap();
    let png_labels: Vec<u32> = png_batch.labels.to_vec1().unwrap();
    // The folder holds the test split class by class; match each image by its file name.
    let p = plan(&folder, &spec, Limits::default()).unwrap();
    for (j, entry) in p.test.iter().enumerate() {
        let i: usize = entry
            .path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .parse()
            .unwrap();
        assert_eq!(png_labels[j], labels[i]);
        assert_eq!(
            png_values[j * 784..(j + 1) * 784],
            values[i * 784..(i + 1) * 784],
            "image {i}"
        );
    }
}

#[test]
fn a_topographic_resnet18_with_imagenet_stems_trains_on_a_folder_of_jpegs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pets");
    tree(&root);
    let yaml = tmp.path().join("pets.yaml");
    std::fs::write(
        &yaml,
        format!(
            "extends: {}
name: pets
datasets:
  pets:
    kind: image_folder
    root: pets
    image:
      size: 32
      resize: 36
      augment: [random_resized_crop, horizontal_flip]
models:
  r: {{ kind: resnet18, width: 0.0625, stem: imagenet }}
grid:
  dataset: [pets]
  topography: [grid2d]
training:
  epochs: 1
  batch_size: 4
",
            super::common::tiny_yaml()
        ),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let out = topo_command(tmp.path(), &yaml, "run", &results, &["--no-report"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("decoding 16 images"), "{stderr}");
    assert!(
        stderr.contains(
            "image folder (pets): 2 classes; train 11, validation 1 (10% held out of train/), \
             test 4 (val/); 1 file(s) skipped"
        ),
        "{stderr}"
    );
    let runs: Vec<_> = std::fs::read_dir(results.join("pets/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(record["status"], "done", "{record}");
    let accuracy = record["test_accuracy"].as_f64();
    assert!(
        accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)),
        "{record}"
    );
}
