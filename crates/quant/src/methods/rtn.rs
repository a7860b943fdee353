//! Round to nearest: each block's scales by the format's own weighted search (llama.cpp's
//! objective, weighted by the importance matrix when calibration gave one), each code the
//! nearest level. The baseline every other method is measured against, and what they fall back
//! to where they have nothing to add (float targets, tensors calibration did not reach).

use super::{
    check_job, encode_rows, fit, importance_of, job_error, map_rows, Encoded, Method, MethodNotes,
    Needs, QuantOutcome, TensorJob,
};
use crate::error::QuantError;
use crate::target::Target;

pub struct Rtn;

impl Method for Rtn {
    fn name(&self) -> &'static str {
        "rtn"
    }

    fn needs(&self) -> Needs {
        Needs {
            importance: true,
            ..Needs::default()
        }
    }

    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError> {
        check_job(job)?;
        let imp = importance_of(job.stats);
        Ok(QuantOutcome {
            encoded: round_to_nearest(job, imp.as_deref())?,
            notes: MethodNotes::default(),
        })
    }
}

/// Round-to-nearest of a whole tensor onto its target, rows in parallel.
pub fn round_to_nearest(job: &TensorJob, importance: Option<&[f32]>) -> Result<Encoded, QuantError> {
    let err = job_error(job);
    match job.target {
        Target::Block(t) => {
            let q = crate::tensor::quantize_tensor(job.values, job.cols, t, importance)
                .map_err(|e| err(e.to_string()))?;
            Ok(Encoded::Blocks(q.bytes))
        }
        Target::Affine(_) => {
            let per_row = map_rows(job, |row| {
                let g = fit(&job.target, row, importance)?;
                Ok((g.nearest_codes(row), vec![g]))
            })?;
            encode_rows(&job.target, job.rows, job.cols, per_row).map_err(err)
        }
    }
}
