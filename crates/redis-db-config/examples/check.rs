fn main() {
    for p in std::env::args().skip(1) {
        match redis_db_config::parse_file(std::path::Path::new(&p)) {
            Ok(c) => println!("{c:#?}"),
            Err(e) => println!("{e}"),
        }
    }
}
