// placeholder
using namespace sim5;
