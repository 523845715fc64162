//! The oncepay server binary.

fn main() {}
