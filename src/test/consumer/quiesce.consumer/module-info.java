/** A service that imports Quiesce the way any user's module would: by its module name alone. */
module quiesce.consumer {
    requires io.quiesce;
}
