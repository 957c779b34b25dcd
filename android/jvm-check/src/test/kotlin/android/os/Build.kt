package android.os

/**
 * Test-runtime stand-in for the one framework read the generated Android bindings make on
 * a plain JVM: `Build.VERSION.SDK_INT` when choosing the object cleaner. 0 selects JNA's
 * cleaner, as on an old device. (android-all is excluded from the test runtime: its real
 * `Build` reads system properties through JNI.)
 */
object Build {
    /** The API level. */
    object VERSION {
        /** No Android here: selects the JNA cleaner. */
        @JvmField
        val SDK_INT: Int = 0
    }
}
