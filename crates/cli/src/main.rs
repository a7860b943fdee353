fn main() {
    println!("lowbit {}", env!("CARGO_PKG_VERSION"));
}
