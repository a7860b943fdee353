//! `lowbit embed`: argument errors without a model, and a short real-model run.

mod common;
use common::{fails, ok, real_model};

#[test]
fn embed_rejects_bad_arguments_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n  \n").unwrap();
    let err = fails(&[&"embed", &"--model", &dir.path(), &"--file", &empty]);
    assert!(err.contains("no non-empty line"), "{err}");
    let text = dir.path().join("one.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let err = fails(&[
        &"embed",
        &"--model",
        &dir.path(),
        &"--file",
        &text,
        &"--quantize",
        &"Q9_9",
    ]);
    assert!(err.contains("not a GGUF type"), "{err}");
    let err = fails(&[&"embed", &"--model", &dir.path(), &"--file", &text]);
    assert!(err.contains("cannot open model folder"), "{err}");
}

#[test]
fn embed_minilm_q8_0_is_close_to_f32() {
    let Some(model) = real_model("all-MiniLM-L6-v2") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("s.txt");
    std::fs::write(
        &text,
        "A man is playing a guitar.\n\nThe cat sat on the mat.\nQuantization is cheap.\n",
    )
    .unwrap();
    let out = ok(&[&"embed", &"--model", &model, &"--file", &text, &"--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sentences"], 3);
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 3);
    let norm: f64 = e[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum();
    assert!(
        (norm - 1.0).abs() < 1e-5,
        "embeddings are L2-normalised: {norm}"
    );

    let out = ok(&[
        &"embed",
        &"--model",
        &model,
        &"--file",
        &text,
        &"--quantize",
        &"Q8_0",
        &"--batch",
        &"2",
        &"--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mean = v["mean_cosine"].as_f64().unwrap();
    assert!(
        mean > 0.999 && mean <= 1.0 + 1e-9,
        "Q8_0 mean cosine {mean}"
    );
    assert_eq!(v["other_weight_types"], serde_json::json!(["Q8_0"]));
}

#[test]
fn embed_minilm_w8a8_static_and_dynamic_stay_close_to_f32() {
    let Some(model) = real_model("all-MiniLM-L6-v2") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("s.txt");
    std::fs::write(
        &text,
        "A man is playing a guitar.\nThe cat sat on the mat.\nQuantization is cheap.\n",
    )
    .unwrap();
    let calib = dir.path().join("c.txt");
    std::fs::write(
        &calib,
        "The weather was cold and the river froze early that year.\n\
         Researchers measured the speed of sound in several gases.\n\
         She played the violin in the city orchestra for a decade.\n\
         The committee approved the budget after a long debate.\n",
    )
    .unwrap();
    let err = fails(&[&"embed", &"--model", &model, &"--file", &text, &"--quantize", &"w8a8"]);
    assert!(err.contains("--calib"), "{err}");
    let err = fails(&[
        &"embed", &"--model", &model, &"--file", &text, &"--quantize", &"w8a8", &"--calib", &text,
    ]);
    assert!(err.contains("being compared"), "{err}");
    let mean = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"embed", &"--model", &model, &"--file", &text, &"--json"];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        v["mean_cosine"].as_f64().unwrap()
    };
    let dynamic = mean(&[&"--quantize", &"w8a8-dynamic"]);
    let fixed = mean(&[&"--quantize", &"w8a8", &"--calib", &calib, &"--act-asym"]);
    // Rounding activations costs something, but far from what a broken path would.
    assert!(dynamic > 0.99 && dynamic < 1.0, "dynamic {dynamic}");
    assert!(fixed > 0.97 && fixed < 1.0, "static {fixed}");
    // The int8 × int8 products compute what fake quantization measures.
    let fake = mean(&[&"--quantize", &"w8a8", &"--calib", &calib, &"--act-asym", &"--fake-quant"]);
    assert!((fixed - fake).abs() < 1e-4, "int8 products {fixed} vs fake quantization {fake}");
    let fake = mean(&[&"--quantize", &"w8a8-dynamic", &"--fake-quant"]);
    assert!((dynamic - fake).abs() < 1e-3, "int8 products {dynamic} vs fake quantization {fake}");
}
