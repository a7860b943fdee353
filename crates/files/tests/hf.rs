//! Hugging Face folders: single file, sharded, and broken indexes.

use std::path::Path;

use lowbit_files::{Dtype, FileError, HfModel, SafeTensorSpec, SafetensorsWriter};

fn shard(path: &Path, tensors: &[(&str, f32)]) {
    let specs = tensors
        .iter()
        .map(|(n, _)| SafeTensorSpec::new(*n, Dtype::F32, &[2]))
        .collect();
    let mut w = SafetensorsWriter::create(path, vec![], specs).unwrap();
    for (n, v) in tensors {
        let d: Vec<u8> = [*v, -*v].iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_tensor(n, &d).unwrap();
    }
    w.finish().unwrap();
}

const CONFIG: &str = r#"{"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":64,
    "rms_norm_eps":1e-5,"tie_word_embeddings":true,"text_config":{"vocab_size":100}}"#;

fn folder(index: Option<&str>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), CONFIG).unwrap();
    match index {
        None => shard(
            &d.path().join("model.safetensors"),
            &[("a", 1.0), ("b", 2.0)],
        ),
        Some(idx) => {
            shard(&d.path().join("s1.safetensors"), &[("a", 1.0), ("b", 2.0)]);
            shard(&d.path().join("s2.safetensors"), &[("c", 3.0)]);
            std::fs::write(d.path().join("model.safetensors.index.json"), idx).unwrap();
        }
    }
    d
}

const GOOD_INDEX: &str = r#"{"metadata":{"total_size":24},"weight_map":{"a":"s1.safetensors","c":"s2.safetensors","b":"s1.safetensors"}}"#;

#[test]
fn single_file_folder() {
    let d = folder(None);
    let m = HfModel::open(d.path()).unwrap();
    assert_eq!(m.model_type().unwrap(), "llama");
    assert_eq!(m.architectures(), ["LlamaForCausalLM"]);
    assert_eq!(m.config_u64("hidden_size").unwrap(), 64);
    assert_eq!(
        m.config_u64("vocab_size").unwrap(),
        100,
        "falls back to text_config"
    );
    assert_eq!(m.config_f64("rms_norm_eps").unwrap(), 1e-5);
    assert!(m.config_bool("tie_word_embeddings").unwrap());
    assert!(matches!(
        m.config_u64("model_type"),
        Err(FileError::WrongType {
            found: "string",
            ..
        })
    ));
    assert!(matches!(
        m.config_u64("nope"),
        Err(FileError::MissingKey { .. })
    ));
    assert_eq!(m.tensor_f32("b").unwrap(), [2.0, -2.0]);
    assert!(m.tokenizer_json_path().is_none());
    assert!(m.load_tokenizer_json().unwrap().is_none());
    assert!(matches!(
        m.tensor_data("zz"),
        Err(FileError::MissingTensor { .. })
    ));

    std::fs::write(d.path().join("tokenizer.json"), r#"{"model":{}}"#).unwrap();
    std::fs::write(d.path().join("tokenizer_config.json"), "{").unwrap();
    let m = HfModel::open(d.path()).unwrap();
    assert!(m
        .load_tokenizer_json()
        .unwrap()
        .unwrap()
        .get("model")
        .is_some());
    assert!(m
        .load_tokenizer_config()
        .unwrap_err()
        .to_string()
        .contains("tokenizer_config.json"));
}

#[test]
fn sharded_folder() {
    let d = folder(Some(GOOD_INDEX));
    let m = HfModel::open(d.path()).unwrap();
    assert_eq!(m.shards().len(), 2);
    let names: Vec<&str> = m.tensors().map(|(_, t)| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(m.tensor_f32("c").unwrap(), [3.0, -3.0]);
    assert!(m.tensor("c").unwrap().0.path().ends_with("s2.safetensors"));
}

#[test]
fn broken_folders() {
    let err = |d: &tempfile::TempDir| HfModel::open(d.path()).unwrap_err().to_string();

    let d = folder(Some(
        r#"{"weight_map":{"a":"s1.safetensors","c":"s3.safetensors"}}"#,
    ));
    let e = err(&d);
    assert!(e.contains("s3.safetensors") && e.contains("missing"), "{e}");

    let d = folder(Some(
        r#"{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}"#,
    ));
    assert!(err(&d).contains("'a' is listed twice"));

    let d = folder(Some(r#"{"weight_map":{"a":"s2.safetensors"}}"#));
    assert!(err(&d).contains("does not hold it"));

    let d = folder(Some(r#"{"weight_map":{"a":"../s1.safetensors"}}"#));
    assert!(err(&d).contains("not a plain file name"));

    let d = folder(Some(
        r#"{"weight_map":{"a":"s1.safetensors","c":"s2.safetensors"}}"#,
    ));
    shard(&d.path().join("s2.safetensors"), &[("c", 3.0), ("a", 9.0)]);
    assert!(err(&d).contains("'a' is stored twice"));

    let d = folder(Some(r#"{"weight_map":[]}"#));
    assert!(err(&d).contains("invalid index"));

    let d = folder(None);
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    assert!(err(&d).contains("no model.safetensors"));
    std::fs::remove_file(d.path().join("config.json")).unwrap();
    assert!(err(&d).contains("config.json"));
}
