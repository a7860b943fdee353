use crate::block::BlockFormat;
use crate::GgmlType;

/// The formats of this family (filled in as they are implemented).
pub fn lookup(_ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    None
}
